import Foundation
import LTEBase
import LTENet
import XCTest

final class CodecRoundTripTests: XCTestCase {
    func testEveryMessageTypeRoundTripsWithChecksum() throws {
        let codec = WireCodec()
        for m in WireFixtures.all {
            let frame = try codec.encode(m)
            XCTAssertEqual(try codec.decode(frame), m, "\(m.type)")
            XCTAssertEqual(try codec.encode(codec.decode(frame)), frame, "\(m.type) re-encodes identically")
        }
    }

    func testEveryMessageTypeRoundTripsWithHMAC() throws {
        let codec = WireCodec(secret: WireFixtures.secret())
        for m in WireFixtures.all {
            let frame = try codec.encode(m)
            XCTAssertEqual(try codec.decode(frame), m, "\(m.type)")
        }
    }

    func testExactHeaderBytes() throws {
        let frame = try WireCodec().encode(.statusRequest)
        // "LTE1", version 7, type 5, flags 0, body length 0, then SHA-256 of those 20 bytes.
        let header: [UInt8] = [0x4C, 0x54, 0x45, 0x31, 7, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(Array(frame.prefix(20)), header)
        XCTAssertEqual(frame.count, 52)
        // SHA-256 of the header, computed independently of the codec.
        XCTAssertEqual(Array(frame.suffix(32)), Array(Authenticator(secret: nil).trailer(for: Data(header))))

        let signed = try WireCodec(secret: WireFixtures.secret()).encode(WireFixtures.error)
        XCTAssertEqual(Array(signed.prefix(12)), [0x4C, 0x54, 0x45, 0x31, 7, 0, 7, 0, 1, 0, 0, 0])
        let bodyLength = signed.count - 52
        XCTAssertEqual(Array(signed[12..<20]), (0..<8).map { UInt8(truncatingIfNeeded: bodyLength >> (8 * $0)) })
        // error body: code 3 (UInt16) then the length-prefixed message.
        XCTAssertEqual(Array(signed[20..<26]), [3, 0, UInt8(bodyLength - 6), 0, 0, 0])
    }

    func testTensorLayoutIsLittleEndianFloat32() throws {
        let t = WireTensor(name: "w", shape: [1, 2], values: [1.0, -2.0])
        let frame = try WireCodec().encode(.roundResult(RoundResultMessage(
            round: 1, commitId: "c", weightsHash: WireFixtures.digestB, headsMerged: [], tensors: [t])))
        let body = Array(frame.dropFirst(20).dropLast(32))
        // round(8) commit(4+1) hash(32) heads(4) tensorCount(4) = 53, then the tensor.
        let tensor = Array(body[53...])
        XCTAssertEqual(tensor, [1, 0, 0, 0, UInt8(ascii: "w"),       // name
                                2, 0, 0, 0,                           // rank
                                1, 0, 0, 0, 0, 0, 0, 0,               // dim 0
                                2, 0, 0, 0, 0, 0, 0, 0,               // dim 1
                                0,                                    // encoding: float32
                                0x00, 0x00, 0x80, 0x3F,               // 1.0
                                0x00, 0x00, 0x00, 0xC0,               // -2.0
                                0])                                   // no frozen-weights hash
    }

    /// A tensor in another encoding carries its bytes behind a length, and comes back as it went.
    func testEncodedTensorRoundTrips() throws {
        let t = WireTensor(name: "q", shape: [3], encoding: WireTensor.Encoding(rawValue: 2), bytes: [1, 2, 3, 4, 5, 6, 7])
        let m = WireMessage.push(PushMessage(workerId: "w", round: 1, baseCommit: "b", headIds: [0], headLosses: [1], tokens: 0, nonce: 1,
                                             trainMicroseconds: 1234, previousWaitMicroseconds: 56, tensors: [t]))
        let codec = WireCodec(secret: WireFixtures.secret())
        let frame = try codec.encode(m)
        XCTAssertEqual(try codec.decode(frame), m)
        let body = Array(frame.dropFirst(20).dropLast(32))
        // … the tensor's encoding, byte length and bytes, then the (empty) signature's length.
        XCTAssertEqual(Array(body.suffix(7 + 8 + 1 + 4)), [2] + [7, 0, 0, 0, 0, 0, 0, 0] + [1, 2, 3, 4, 5, 6, 7] + [0, 0, 0, 0])
    }

    func testLargeTensorRoundTrip() throws {
        let big = WireFixtures.tensor("big", [512, 1024], seed: 9)
        let m = WireMessage.push(PushMessage(workerId: "w", round: 0, baseCommit: "b", headIds: [0], headLosses: [1],
                                             tokens: 0, nonce: 1, tensors: [big]))
        let codec = WireCodec(secret: WireFixtures.secret())
        let frame = try codec.encode(m)
        // … tokens, nonce, train and wait times (8 each), tensors: count, name, rank, dims, encoding, values; the empty signature
        XCTAssertEqual(frame.count, 52 + 4 + 1 + 8 + 4 + 1 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 4 + 3 + 4 + 16 + 1 + 512 * 1024 * 4 + 4)
        XCTAssertEqual(try codec.decode(frame), m)
    }

    func testPeekHeader() throws {
        let h = try WireCodec.peekHeader(WireCodec(secret: WireFixtures.secret()).encode(WireFixtures.hello))
        XCTAssertEqual(h.type, .hello)
        XCTAssertEqual(h.flags, .authenticated)
        XCTAssertEqual(h.version, 7)
    }

    func testEncoderRefusesWhatDecoderWouldRefuse() {
        let codec = WireCodec(maxMessageBytes: 4096, maxStringBytes: 16)
        func refused(_ m: WireMessage, _ kind: WireError.Kind, line: UInt = #line) {
            XCTAssertThrowsError(try codec.encode(m), line: line) { e in
                XCTAssertEqual((e as? WireError)?.kind, kind, "\(e)", line: line)
            }
        }
        let t = WireTensor(name: "t", shape: [2, 2], values: [1, 2, 3])
        refused(.push(PushMessage(workerId: "w", round: 0, baseCommit: "", headIds: [0], headLosses: [1], tokens: 0, nonce: 0, tensors: [t])), .invalidTensor)
        refused(.push(PushMessage(workerId: "w", round: -1, baseCommit: "", headIds: [], headLosses: [], tokens: 0, nonce: 0, tensors: [])), .invalidValue)
        refused(.push(PushMessage(workerId: "w", round: 0, baseCommit: "", headIds: [1, 1], headLosses: [1, 1], tokens: 0, nonce: 0, tensors: [])), .invalidValue)
        refused(.push(PushMessage(workerId: "w", round: 0, baseCommit: "", headIds: [1], headLosses: [], tokens: 0, nonce: 0, tensors: [])), .invalidValue)
        refused(.hello(HelloMessage(workerId: String(repeating: "x", count: 17), headIds: [], configFingerprint: WireFixtures.digestA, nonce: 0)), .tooLarge)
        refused(.hello(HelloMessage(workerId: "w", headIds: [], configFingerprint: Data([1, 2]), nonce: 0)), .invalidValue)
        refused(.roundResult(RoundResultMessage(round: 0, commitId: "", weightsHash: WireFixtures.digestB, headsMerged: [],
                                                tensors: [WireTensor(name: "r", shape: Array(repeating: 1, count: 9), values: [0])])), .invalidTensor)
        refused(.roundResult(RoundResultMessage(round: 0, commitId: "", weightsHash: WireFixtures.digestB, headsMerged: [],
                                                tensors: [WireFixtures.tensor("big", [2000], seed: 1)])), .tooLarge)
        let dup = WireTensor(name: "d", shape: [1], values: [0])
        refused(.welcome(WelcomeMessage(runId: "", round: 0, baseCommit: "", configJSON: Data(), tensors: [dup, dup])), .invalidTensor)
    }

    func testFiniteValidation() {
        var push = PushMessage(workerId: "w", round: 0, baseCommit: "", headIds: [0], headLosses: [1], tokens: 0, nonce: 0,
                               tensors: [WireTensor(name: "a", shape: [3], values: [0, 1, 2])])
        XCTAssertNoThrow(try push.validateFinite())
        push.tensors[0].values[2] = .nan
        XCTAssertThrowsError(try push.validateFinite()) { e in
            XCTAssertEqual((e as? WireError)?.kind, .nonFinite)
            XCTAssertTrue("\(e)".contains("'a' element 2"), "\(e)")
        }
        push.tensors[0].values[2] = 0
        push.headLosses[0] = .infinity
        XCTAssertThrowsError(try push.validateFinite())
        // The codec itself carries NaN faithfully: refusing it is the server's decision.
        let nan = WireMessage.roundResult(RoundResultMessage(round: 0, commitId: "", weightsHash: WireFixtures.digestB, headsMerged: [],
                                                             tensors: [WireTensor(name: "n", shape: [2], values: [.nan, -.infinity])]))
        XCTAssertNoThrow(try WireCodec().decode(WireCodec().encode(nan)))
        var long = WireTensor(name: "l", shape: [10_000], values: Array(repeating: 1, count: 10_000))
        XCTAssertNil(long.firstNonFiniteIndex())
        long.values[9_999] = -.infinity
        XCTAssertEqual(long.firstNonFiniteIndex(), 9_999)
    }

    func testErrorReplyForRefusal() {
        XCTAssertEqual(ErrorMessage(refusing: WireError(.badMAC, "x")).code, .unauthorized)
        XCTAssertEqual(ErrorMessage(refusing: WireError(.truncated, "x")).code, .malformed)
        XCTAssertEqual(ErrorMessage(refusing: WireError(.nonFinite, "x")).code, .nonFinite)
        XCTAssertEqual("\(ErrorCode(rawValue: 999))", "error 999")
    }
}
