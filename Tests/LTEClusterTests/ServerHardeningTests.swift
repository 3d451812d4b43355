import Foundation
import LTEBase
@testable import LTECluster
import LTENet
import LTENumerics
import XCTest

/// The server's handler against hostile and broken messages (DESIGN.md §4): each is refused at once
/// with the right code and a log line, the history does not change, and honest workers are still
/// served afterwards.
final class ServerHardeningTests: XCTestCase {
    /// A NaN/Inf push is refused; the round closes at quorum without that head, and the history holds
    /// no trace of it.
    func testNonFinitePushIsRefusedAndRoundClosesWithoutIt() throws {
        let h = try ServerHarness(quorum: 1, roundTimeout: .milliseconds(300))
        var poisoned = h.honestPush(worker: "b", heads: [1])
        poisoned.tensors[0].values[7] = .nan
        XCTAssertEqual(refusalCode(h.call(.push(poisoned))), .nonFinite)
        var infinite = h.honestPush(worker: "b", heads: [1])
        infinite.tensors[1].values[0] = -.infinity
        XCTAssertEqual(refusalCode(h.call(.push(infinite))), .nonFinite)
        var badLoss = h.honestPush(worker: "b", heads: [1])
        badLoss.headLosses = [.nan]
        XCTAssertEqual(refusalCode(h.call(.push(badLoss))), .nonFinite)
        XCTAssertTrue(h.log.contains { $0.hasPrefix("refused:") && $0.contains("nan") }, "no log line for the NaN push: \(h.log)")

        guard case .roundResult(let result)? = h.send(.push(h.honestPush(worker: "a", heads: [0]))).wait(seconds: 30) else {
            return XCTFail("the round did not close at quorum without the refused head: \(h.log)")
        }
        XCTAssertEqual(result.headsMerged, [0])
        let rounds = try h.rounds()
        XCTAssertEqual(rounds.map(\.round), [1, 0])
        XCTAssertEqual(rounds[0].heads, [0])
        XCTAssertEqual(rounds[0].tokens, h.tokens(heads: 1), "the refused push's tokens were counted")
        let show = try h.history.show("1")
        XCTAssertFalse(show.files.keys.contains { $0.contains("1.safetensors") }, "head 1 left a trace: \(show.files.keys)")

        // The worker whose push was refused comes back with finite values and both heads merge.
        XCTAssertEqual(h.honestRound()?.headsMerged, [0, 1])
        XCTAssertEqual(try h.history.fsck().rounds, 3)
    }

    /// Every field checked: each bad message is refused at once (a push the server accepted would
    /// wait for its round instead), nothing reaches the history, and an honest round then counts
    /// exactly its own heads and tokens.
    func testEveryBadFieldIsRefusedAndChangesNothing() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let before = h.historyFiles()
        let factorCount = h.core.main.layout!.count
        func push(_ edit: (inout PushMessage) -> Void) -> WireMessage {
            var p = h.honestPush(worker: "a", heads: [0])
            edit(&p)
            return .push(p)
        }
        let cases: [(String, WireMessage, ErrorCode)] = [
            ("unknown head", push { $0.headIds = [5] }, .unknownHead),
            ("no heads", push { $0.headIds = []; $0.headLosses = [] }, .unknownHead),
            ("head listed twice", push { $0.headIds = [0, 0]; $0.headLosses = [1, 1] }, .unknownHead),
            ("worker name with a slash", push { $0.workerId = "../evil" }, .unauthorized),
            ("empty worker name", push { $0.workerId = "" }, .unauthorized),
            ("worker name too long", push { $0.workerId = String(repeating: "w", count: 65) }, .unauthorized),
            ("losses missing", push { $0.headLosses = [] }, .wrongShape),
            ("tokens inflated", push { $0.tokens *= 2 }, .wrongShape),
            ("factors one short", push { $0.tensors[0] = WireTensor(name: "factors.0", shape: [factorCount - 1], values: Array($0.tensors[0].values.dropLast())) }, .wrongShape),
            ("factors as a matrix", push { $0.tensors[0].shape = [1, factorCount] }, .wrongShape),
            ("extra tensor", push { $0.tensors.append(WireTensor(name: "main", shape: [1], values: [0])) }, .wrongShape),
            ("another head's tensor", push { $0.tensors[1].name = "replicated.1" }, .wrongShape),
            ("replicated missing", push { $0.tensors.removeLast() }, .wrongShape),
            ("Inf in replicated", push { $0.tensors[1].values[3] = .infinity }, .nonFinite),
            ("future round", push { $0.round = 2 }, .staleRound),
            ("wrong base commit", push { $0.baseCommit = String(repeating: "ab", count: 20) }, .staleRound),
            ("no base commit", push { $0.baseCommit = "" }, .staleRound),
            ("hello for an unknown head", .hello(HelloMessage(workerId: "a", headIds: [2], configFingerprint: Data(count: 32), nonce: 1)), .unknownHead),
            ("hello with a bad name", .hello(HelloMessage(workerId: "a b", headIds: [0], configFingerprint: Data(count: 32), nonce: 2)), .unauthorized),
            ("hello from another config", .hello(HelloMessage(workerId: "a", headIds: [0], configFingerprint: Data(repeating: 7, count: 32), nonce: 3)), .configMismatch),
            ("a server's message", .roundResult(RoundResultMessage(round: 0, commitId: "", weightsHash: WeightsDigest(bytes: Data(count: 32))!, headsMerged: [0], tensors: [])), .unexpected),
        ]
        for (what, message, code) in cases {
            let reply = h.call(message, within: 5)
            XCTAssertNotNil(reply, "\(what): not answered at once (accepted into the round?)")
            XCTAssertEqual(refusalCode(reply), code, "\(what): \(String(describing: reply))")
        }
        XCTAssertEqual(h.log.filter { $0.hasPrefix("refused:") }.count, cases.count, "one log line per refusal:\n\(h.log.joined(separator: "\n"))")
        guard case .status(let s)? = h.call(.statusRequest) else { return XCTFail("no status") }
        XCTAssertEqual(s.headsIn, [], "a refused push left a head in the open round")
        XCTAssertEqual(h.historyFiles(), before, "a refused message wrote to the history")

        XCTAssertEqual(h.honestRound()?.headsMerged, [0, 1])
        let rounds = try h.rounds()
        XCTAssertEqual(rounds.map(\.round), [1, 0])
        XCTAssertEqual(rounds[0].tokens, h.tokens(heads: 2))
    }

    /// A captured hello or push sent again is refused as a replay; the same push resent with a fresh
    /// nonce (a worker retrying) waits for the round like the original and is counted once; a second
    /// worker claiming a head already in is refused.
    func testReplaysAreRefusedAndResendsCountOnce() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let hello = WireMessage.hello(HelloMessage(workerId: "a", headIds: [0], configFingerprint: Data(count: 32), nonce: 42))
        guard case .welcome? = h.call(hello) else { return XCTFail("hello not welcomed") }
        XCTAssertEqual(refusalCode(h.call(hello)), .unauthorized, "replayed hello")

        let original = h.honestPush(worker: "a", heads: [0])
        let first = h.send(.push(original))
        XCTAssertTrue(waitUntil { if case .status(let s)? = h.call(.statusRequest) { return s.headsIn == [0] }; return false })
        XCTAssertEqual(refusalCode(h.call(.push(original), within: 5)), .unauthorized, "replayed push")
        var resent = original
        resent.nonce = ReplayGuard.freshNonce()
        let second = h.send(.push(resent))
        XCTAssertEqual(refusalCode(h.call(.push(h.honestPush(worker: "c", heads: [0])), within: 5)), .unknownHead, "head claimed twice")
        let other = h.send(.push(h.honestPush(worker: "b", heads: [1])))
        let answers = [first, second, other].map { $0.wait(seconds: 30) }
        guard case .roundResult(let result)? = answers[0] else { return XCTFail("round did not close: \(h.log)") }
        XCTAssertEqual(answers[1], answers[0])
        guard case .roundResult(let toB)? = answers[2] else { return XCTFail("worker b was not answered") }
        XCTAssertEqual(ServerHarness.withoutFactors(toB), ServerHarness.withoutFactors(result), "b was answered another round")
        XCTAssertEqual(result.headsMerged, [0, 1])
        XCTAssertEqual(try h.rounds()[0].tokens, h.tokens(heads: 2), "the resent push was counted twice")

        // After the round: the captured push is still a replay; a fresh resend gets the same answer.
        let after = h.historyFiles()
        XCTAssertEqual(refusalCode(h.call(.push(original), within: 5)), .unauthorized)
        resent.nonce = ReplayGuard.freshNonce()
        XCTAssertEqual(h.call(.push(resent), within: 5), answers[0])
        XCTAssertEqual(h.historyFiles(), after)
        XCTAssertEqual(try h.rounds().map(\.round), [1, 0])
    }

    /// Seeded random bytes and mutations of valid frames through the codec (with the run's secret) and
    /// into the handler: no crash, no hang, no change to the history; honest workers are then served.
    func testHandlerFuzzChangesNothing() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let codec = WireCodec(secret: try SharedSecret(bytes: Data(repeating: 0x5A, count: 32)), maxMessageBytes: 1 << 20)
        let root = h.base
        let pushA = h.honestPush(worker: "a", heads: [0]), pushB = h.honestPush(worker: "b", heads: [1])
        let a = h.send(.push(pushA)), b = h.send(.push(pushB))
        XCTAssertNotNil(a.wait(seconds: 30)); XCTAssertNotNil(b.wait(seconds: 30))
        // Seeds: the closed round's pushes (as captured), a hello, a status request, and a push for
        // the open round from the wrong base. No mutation can forge the open round's base commit.
        let seeds = try [WireMessage.push(pushA), .push(pushB), .push(h.honestPush(worker: "a", heads: [0, 1], base: root)),
                         .hello(HelloMessage(workerId: "a", headIds: [0], configFingerprint: Data(count: 32), nonce: 9)),
                         .statusRequest].map { try codec.encode($0) }
        let before = h.historyFiles(), head = try h.history.head()

        var g = SeededGenerator(seed: 2_026_11_30)
        var fuzzed = 0, undecodable = 0, refused = 0, answered = 0
        let clock = ContinuousClock(), end = clock.now + .seconds(20)
        while fuzzed < 10_000 && clock.now < end {
            fuzzed += 1
            var f: Data
            if g.nextInt(below: 16) == 0 {
                f = Data((0..<g.nextInt(below: 256)).map { _ in UInt8(truncatingIfNeeded: g.next()) })
            } else {
                f = seeds[g.nextInt(below: seeds.count)]
                for _ in 0..<(1 + g.nextInt(below: 3)) { mutate(&f, &g) }
                // Most are re-sealed with the secret so the mutation reaches the parser and the handler.
                if g.nextInt(below: 8) != 0, f.count >= 52 { f = reseal(f, codec) }
            }
            guard let message = try? codec.decode(f) else { undecodable += 1; continue }
            guard let reply = h.call(message, within: 10) else {
                return XCTFail("iteration \(fuzzed): the handler did not answer a \(message.type) (accepted into the open round?)")
            }
            if case .error = reply { refused += 1 } else { answered += 1 }
        }
        print("handler fuzz: \(fuzzed) messages, \(undecodable) refused by the codec, \(refused) refused by the server, \(answered) answered")
        XCTAssertGreaterThan(refused, 100, "mutations should reach the server's own checks")
        XCTAssertEqual(h.historyFiles(), before, "the fuzz changed the history")
        XCTAssertEqual(try h.history.head(), head)
        XCTAssertEqual(h.core.round, 1)

        XCTAssertEqual(h.honestRound()?.headsMerged, [0, 1])
        XCTAssertEqual(try h.rounds().map(\.tokens), [h.tokens(heads: 4), h.tokens(heads: 2), 0])
        XCTAssertEqual(try h.history.fsck().rounds, 3)
    }

    /// A server restarted on a history whose last round is in (it was killed before answering):
    /// a worker still pushing that round is told to resynchronise, not that the run is over, and
    /// gets the final weights; the server then stops by itself once every head has them.
    func testServerRestartedOnAFinishedRunLetsWorkersCatchUpAndStops() throws {
        let first = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), rounds: 1)
        let late = first.honestPush(worker: "a", heads: [0])
        XCTAssertEqual(first.honestRound()?.headsMerged, [0, 1])
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), rounds: 1, restarting: first)
        XCTAssertEqual(h.core.round, 1)
        XCTAssertFalse(h.core.waitUntilFinished(timeout: .milliseconds(200)), "stopped before the workers had the final weights")
        guard case .error(let e)? = h.call(.push(late)) else { return XCTFail("the late push was not refused") }
        XCTAssertEqual(e.code, .staleRound)
        XCTAssertTrue(e.message.contains("resynchronise"), e.message)
        for (worker, head) in [("a", 0), ("b", 1)] {
            guard case .welcome(let w)? = h.call(.hello(HelloMessage(workerId: worker, headIds: [head], configFingerprint: Data(count: 32),
                                                                      nonce: ReplayGuard.freshNonce()))) else { return XCTFail("no welcome") }
            XCTAssertEqual(w.round, 1)
            XCTAssertEqual(w.baseCommit, try first.history.head().commit)
        }
        XCTAssertTrue(h.core.waitUntilFinished(timeout: .seconds(5)), "the restarted server never stops")
        XCTAssertEqual(try h.rounds().map(\.round), [1, 0])
    }

    private func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { if condition() { return true }; Thread.sleep(forTimeInterval: 0.01) }
        return false
    }

    private func reseal(_ frame: Data, _ codec: WireCodec) -> Data {
        var f = Data(frame)
        withUnsafeBytes(of: UInt64(f.count - 52).littleEndian) { f.replaceSubrange(12..<20, with: $0) }
        var covered = Data(f.prefix(f.count - 32))
        covered.append(codec.authenticator.trailer(for: covered))
        return covered
    }

    private func mutate(_ f: inout Data, _ g: inout SeededGenerator) {
        guard !f.isEmpty else { f.append(UInt8(truncatingIfNeeded: g.next())); return }
        let at = f.startIndex + g.nextInt(below: f.count)
        switch g.nextInt(below: 6) {
        case 0: f[at] ^= UInt8(1 << g.nextInt(below: 8))
        case 1: f[at] = UInt8(truncatingIfNeeded: g.next())
        case 2:                                   // a 32-bit field set to an edge value (counts, ids, rounds)
            let values: [UInt32] = [0, 1, 2, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x7FC0_0000 /* NaN */, 0x7F80_0000 /* Inf */]
            let v = values[g.nextInt(below: values.count)]
            for k in 0..<4 where at + k < f.endIndex { f[at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        case 3: f.removeSubrange(at..<min(f.endIndex, at + 1 + g.nextInt(below: 8)))
        case 4: f.insert(contentsOf: (0..<(1 + g.nextInt(below: 8))).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: at)
        default: f = f.prefix(at - f.startIndex)
        }
    }
}
