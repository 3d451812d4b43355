import Foundation
import LTEBase
import LTENet
import LTENumerics
import XCTest

/// One valid instance of every message type, small enough to mutate byte by byte.
enum WireFixtures {
    static let digestA = Data((0..<32).map { UInt8($0) })
    static let digestB = WeightsDigest(bytes: (0..<32).map { UInt8(255 - $0) })!

    static func tensor(_ name: String, _ shape: [Int], seed: UInt64) -> WireTensor {
        var g = SeededGenerator(seed: seed)
        let n = shape.reduce(1, *)
        return WireTensor(name: name, shape: shape, values: (0..<n).map { _ in g.nextNormal() })
    }

    static var hello: WireMessage {
        .hello(HelloMessage(workerId: "worker-0", headIds: [0, 3, 7], configFingerprint: digestA, nonce: 0x0123_4567_89AB_CDEF,
                            sentAt: 1_796_400_000_000))
    }

    static var welcome: WireMessage {
        .welcome(WelcomeMessage(
            runId: "run-ß", round: 12, baseCommit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            configJSON: Data(#"{"hidden_size":64}"#.utf8),
            tensors: [tensor("model.embed_tokens.weight", [5, 4], seed: 1), tensor("model.norm.weight", [4], seed: 2)],
            frozenHash: digestB))
    }

    static var push: WireMessage {
        .push(PushMessage(
            workerId: "w1", round: 3, baseCommit: "abc123", headIds: [2, 5], headLosses: [2.5, 2.25],
            tokens: 81920, nonce: 42,
            tensors: [tensor("h2.lora_A", [2, 3], seed: 3), tensor("h2.lora_B", [3, 2], seed: 4), tensor("scalar", [], seed: 5)]))
    }

    static var roundResult: WireMessage {
        .roundResult(RoundResultMessage(
            round: 4, commitId: "deadbeef", weightsHash: digestB, headsMerged: [0, 1, 2],
            tensors: [tensor("delta", [2, 2], seed: 6), WireTensor(name: "empty", shape: [0, 3], values: [])],
            frozenHash: WeightsDigest(bytes: digestA)!))
    }

    static var status: WireMessage {
        .status(StatusMessage(round: 9, headsIn: [1, 4], lossesIn: [3.5, 3.25], headsMissing: [0],
                              fields: ["commit": "cafe", "quorum": "0.75", "ä": "é"]))
    }

    static var error: WireMessage {
        .error(ErrorMessage(code: .staleRound, message: "push for round 3, server is at round 5"))
    }

    static var all: [WireMessage] { [hello, welcome, push, roundResult, .statusRequest, status, error] }

    /// A secret made of fixed bytes, so failures reproduce.
    static func secret(_ byte: UInt8 = 7) -> SharedSecret {
        try! SharedSecret(bytes: [UInt8](repeating: byte, count: 32))
    }
}

extension XCTestCase {
    /// Asserts that decoding fails with a `WireError` (of `kind`, if given) and a one-line message.
    @discardableResult
    func assertRefused(_ codec: WireCodec, _ frame: Data, _ kind: WireError.Kind? = nil,
                       file: StaticString = #filePath, line: UInt = #line) -> WireError? {
        do {
            let m = try codec.decode(frame)
            XCTFail("decoded \(m.type) from a malformed frame", file: file, line: line)
        } catch let e as WireError {
            if let kind { XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line) }
            XCTAssertFalse(e.message.contains("\n"), file: file, line: line)
            return e
        } catch {
            XCTFail("expected WireError, got \(error)", file: file, line: line)
        }
        return nil
    }
}

/// Re-seals a frame whose header or body was edited, so the edit reaches the body parser instead
/// of being caught by the trailer.
func reseal(_ frame: Data, with codec: WireCodec) -> Data {
    var covered = Data(frame.prefix(frame.count - 32))
    covered.append(codec.authenticator.trailer(for: covered))
    return covered
}

/// Overwrites the little-endian body length (bytes 12..<20).
func settingBodyLength(_ frame: Data, _ length: UInt64) -> Data {
    var f = Data(frame)
    withUnsafeBytes(of: length.littleEndian) { f.replaceSubrange(12..<20, with: $0) }
    return f
}
