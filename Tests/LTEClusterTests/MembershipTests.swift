import Foundation
import LTEBase
@testable import LTECluster
import LTEData
import LTEModel
import LTENet
import LTENumerics
import LTETestSupport
import LTETraining
import XCTest

/// Open membership, in process: identities (Ed25519 keys in a `KeyStore`) checked by the server's
/// codec on every frame, heads bound to the worker they were given to, clean leaves handing a head's
/// whole state on, vanished workers' heads handed on after their lease. Requests go through real
/// codecs — the worker's signs, the server's verifies — into the server's handler.
final class MembershipTests: XCTestCase {
    var keysDirectory: URL!
    var keys: KeyStore { KeyStore(directory: keysDirectory) }

    override func setUpWithError() throws { keysDirectory = try makeTemporaryDirectory().appendingPathComponent("keys") }

    // MARK: - Identities

    /// A known worker pushing for a head bound to another identity is refused, and the round is not touched.
    func testPushForAHeadBoundToAnotherIdentityIsRefused() throws {
        let (a, ka) = (try worker("a", heads: [0]), try keys.add("a"))
        let (b, kb) = (try worker("b", heads: [1]), try keys.add("b"))
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), identities: keys)
        try a.join(over: link(h, key: ka))
        try b.join(over: link(h, key: kb))
        let hijack = h.honestPush(worker: "b", heads: [0])
        let reply = try link(h, key: kb)({ .push(hijack) })
        XCTAssertEqual(refusalCode(reply), .unknownHead, "\(reply)")
        guard case .error(let e) = reply else { return }
        XCTAssertTrue(e.message.contains("head 0 is bound to worker a"), e.message)
        // Honest pushes still make the round.
        XCTAssertEqual(try pushTogether([(a, h, ka), (b, h, kb)]), [.merged(round: 1), .merged(round: 1)])
        XCTAssertEqual(try h.rounds().first?.heads, [0, 1])
    }

    /// A hello asking for a head another worker holds is refused too.
    func testHelloForAHeldHeadIsRefused() throws {
        let ka = try keys.add("a"), kb = try keys.add("b")
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), identities: keys)
        try worker("a", heads: [0]).join(over: link(h, key: ka))
        XCTAssertThrowsError(try worker("b", heads: [0]).join(over: link(h, key: kb))) { e in
            XCTAssertTrue("\(e)".contains("head 0 is held by worker a"), "\(e)")
        }
    }

    /// `lte keys revoke` mid-run: the revoked worker's next message is refused, and its heads are freed.
    func testRevokedIdentityIsRefusedFromItsNextMessage() throws {
        let ka = try keys.add("a"), kb = try keys.add("b")
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        let h = try ServerHarness(quorum: 1, roundTimeout: .milliseconds(300), identities: keys)
        try a.join(over: link(h, key: ka))
        try b.join(over: link(h, key: kb))
        XCTAssertEqual(try pushTogether([(a, h, ka), (b, h, kb)]), [.merged(round: 1), .merged(round: 1)])

        try keys.revoke("a")
        XCTAssertThrowsError(try a.push(a.trainRound(), over: link(h, key: ka))) { e in
            XCTAssertTrue("\(e)".contains("revoked"), "\(e)")
        }
        _ = h.core.handle(.statusRequest, frameBytes: 0)
        XCTAssertEqual(h.core.membership.freeHeads, [0], "the revoked worker's head was not freed")
        XCTAssertEqual(try b.push(b.trainRound(), over: link(h, key: kb)), .merged(round: 2))
        let notes = try XCTUnwrap(h.history.show("2").round?.notes)
        XCTAssertTrue(notes["membership.head.0"]?.contains("identity revoked") ?? false, "\(notes)")
    }

    /// An impostor who knows a worker's name but not its key cannot push: signed with another key,
    /// or not signed at all, or under a name the run does not know.
    func testImpostorWithoutTheKeyCannotPush() throws {
        let ka = try keys.add("a")
        _ = try keys.add("mallory")
        let h = try ServerHarness(quorum: 1, roundTimeout: .seconds(60), identities: keys)
        try worker("a", heads: [0]).join(over: link(h, key: ka))
        let forged = h.honestPush(worker: "a", heads: [0])
        for (key, expected) in [(IdentityKey(), "not by \"a\"'s key"), (nil, "is not signed")] as [(IdentityKey?, String)] {
            let reply = try link(h, key: key)({ .push(forged) })
            XCTAssertEqual(refusalCode(reply), .unauthorized)
            if case .error(let e) = reply { XCTAssertTrue(e.message.contains(expected), e.message) }
        }
        let stranger = try link(h, key: IdentityKey())({ .push(h.honestPush(worker: "eve", heads: [1])) })
        XCTAssertEqual(refusalCode(stranger), .unauthorized)
        XCTAssertEqual(try h.rounds().count, 1, "a forged push reached a round")
    }

    // MARK: - Heads handed out, handed over, handed on

    /// A clean leave after round 1 hands head 0's whole state to the next worker, which takes it with
    /// `--heads auto` and holds exactly what the first worker held; the run ends bit-identical to one
    /// in which the first worker never left.
    func testCleanLeaveHandsOverStateAndEndsBitIdentical() throws {
        let steady = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let a0 = try worker("a", heads: [0]), b0 = try worker("b", heads: [1])
        for w in [a0, b0] { try w.join(over: link(steady)) }
        for _ in 0..<3 { _ = try pushTogether([(a0, steady, nil), (b0, steady, nil)]) }

        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let a = try worker("a", heads: [], maxHeads: 1), b = try worker("b", heads: [], maxHeads: 1)
        for w in [a, b] { try w.join(over: link(h)) }
        XCTAssertEqual(a.heads, [0]); XCTAssertEqual(b.heads, [1])
        XCTAssertEqual(try pushTogether([(a, h, nil), (b, h, nil)]), [.merged(round: 1), .merged(round: 1)])
        let held = try XCTUnwrap(a.headStates.first)
        XCTAssertGreaterThan(held.optimizerStep, 0)
        try a.leave(over: link(h))
        XCTAssertEqual(h.core.membership.freeHeads, [0])

        let c = try worker("c", heads: [], maxHeads: 4)
        try c.join(over: link(h))
        XCTAssertEqual(c.heads, [0], "the free head was not handed out")
        XCTAssertEqual(c.headStates.first, held, "the handed-over head's state differs from what its previous worker held")
        for _ in 0..<2 { _ = try pushTogether([(c, h, nil), (b, h, nil)]) }
        XCTAssertEqual(h.core.round, 3)
        XCTAssertEqual(h.core.main.weightsHash, steady.core.main.weightsHash, "a clean leave changed the run's weights")
        XCTAssertEqual(c.weightsHash, steady.core.main.weightsHash)
        let notes = try XCTUnwrap(h.history.show("2").round?.notes)
        XCTAssertTrue(notes["membership.head.0"]?.contains("with the state a handed over at round 1") ?? false, "\(notes)")
    }

    /// A worker that vanishes loses its head after the lease; the next worker gets it with the factors
    /// of its last merge and fresh optimizer moments. With every head held, `--heads auto` is refused.
    func testVanishedWorkersHeadIsHandedOnFromItsLastMerge() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), leaseTimeout: .milliseconds(1500))
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        for w in [a, b] { try w.join(over: link(h)) }
        XCTAssertThrowsError(try worker("late", heads: [], maxHeads: 1).join(over: link(h))) { e in
            XCTAssertTrue("\(e)".contains("held by a worker"), "\(e)")
        }
        XCTAssertEqual(try pushTogether([(a, h, nil), (b, h, nil)]), [.merged(round: 1), .merged(round: 1)])
        // b pushes for round 2 and waits on it (alive however long that takes); a vanishes.
        let bPush = Background { try b.push(b.trainRound(), over: self.link(h)) }
        Thread.sleep(forTimeInterval: 2.5)
        let c = try worker("c", heads: [], maxHeads: 1)
        try c.join(over: link(h))
        XCTAssertEqual(c.heads, [0])
        let state = try XCTUnwrap(c.headStates.first)
        XCTAssertEqual(state.factors, h.core.main.lastMerged[0]?.array, "not the factors of the head's last merge")
        XCTAssertEqual(state.optimizerStep, 0)
        XCTAssertTrue(state.headMoments.m.allSatisfy { $0 == 0 }, "the optimizer moments are not fresh")
        XCTAssertEqual(try c.push(c.trainRound(), over: link(h)), .merged(round: 2))
        XCTAssertEqual(try bPush.value(), .merged(round: 2))
        let notes = try XCTUnwrap(h.history.show("2").round?.notes)
        XCTAssertTrue(notes["membership.head.0"]?.contains("fresh optimizer moments") ?? false, "\(notes)")
    }

    // MARK: - Clean leaves under every merge mode

    /// Under reset-B (Algorithm 1: B ← 0 at each merge) a clean leave hands over the head's A, its
    /// zeroed-and-retrained B and both AdamW moments: the run ends bit-identical to one without it.
    func testCleanLeaveUnderResetBEndsBitIdentical() throws {
        try assertCleanLeaveKeepsTheBits { $0.merge = .resetB }
    }

    /// With factors pushed as int8 the leave hands over the worker's own float32 factors (what it
    /// trains on), not the dequantized push: the bits are kept as well.
    func testCleanLeaveWithQuantizedPushesEndsBitIdentical() throws {
        try assertCleanLeaveKeepsTheBits { $0.pushFormat = .int8 }
    }

    /// With `lte.overlap` the worker leaving collects the merge in flight first, so the state it hands
    /// over is the merged one, and the worker taking the head applies that merge a round early
    /// (`WorkerCore.run`): no bit-identity is claimed. The leave is still clean: the run ends, every
    /// node on the server's weights.
    func testCleanLeaveWithOverlapEndsTheRunOnTheServersWeights() throws {
        let h = try cleanLeaveRun(rounds: 4) { $0.overlap = true }
        XCTAssertTrue(h.log.contains { $0.contains("left at round") && $0.contains("lte.overlap") && $0.contains("not bit-identical") }, "\(h.log)")
    }

    /// Under reset-B every node zeroes a merged head's B. A worker process started again after the
    /// merge, and a worker taking a vanished worker's head, must get the head that way too (its A as
    /// merged, B = 0): with the B it pushed, its next push would merge the same B·A a second time.
    func testResetBHeadTakenAfterItsMergeStartsWithBZeroed() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), leaseTimeout: .milliseconds(1500), lte: { $0.merge = .resetB })
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        for w in [a, b] { try w.join(over: link(h)) }
        XCTAssertEqual(try pushTogether([(a, h, nil), (b, h, nil)]), [.merged(round: 1), .merged(round: 1)])
        let held = try XCTUnwrap(a.headStates.first?.factors)
        let layout = try XCTUnwrap(h.core.main.layout)
        XCTAssertTrue(layout.sites.allSatisfy { s in held[s.b..<(s.b + s.outFeatures * layout.rank)].allSatisfy { $0 == 0 } }, "B is not zero after a reset-B merge")
        XCTAssertTrue(held.contains { $0 != 0 })

        let restarted = try worker("a", heads: [0])
        try restarted.join(over: link(h))
        XCTAssertTrue(restarted.headStates.first?.factors == held, "a restarted worker's head is not the merged one")

        // a and its restart vanish; b waits on round 2; c takes head 0 after the lease.
        let bPush = Background { try b.push(b.trainRound(), over: self.link(h)) }
        Thread.sleep(forTimeInterval: 2.5)
        let c = try worker("c", heads: [], maxHeads: 1)
        try c.join(over: link(h))
        XCTAssertEqual(c.heads, [0])
        XCTAssertTrue(c.headStates.first?.factors == held, "the head handed on is not its last merge (A as merged, B = 0)")
        XCTAssertEqual(try c.push(c.trainRound(), over: link(h)), .merged(round: 2))
        XCTAssertEqual(try bPush.value(), .merged(round: 2))
    }

    /// Runs the same 4 rounds twice with the LTE settings `adjust` makes — two workers throughout,
    /// and a worker leaving cleanly after its first round whose head a third worker takes — and
    /// checks both end on the same weights, bit for bit.
    private func assertCleanLeaveKeepsTheBits(file: StaticString = #filePath, line: UInt = #line,
                                              _ adjust: @escaping (inout LoRAConfig) -> Void) throws {
        let steady = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), rounds: 4, lte: adjust)
        let a0 = try worker("a", heads: [0]), b0 = try worker("b", heads: [1])
        let runs = [a0, b0].map { w in Background { try w.run(over: self.link(steady)) } }
        let steadyHashes = try runs.map { try $0.value(seconds: 120) }
        XCTAssertEqual(Set(steadyHashes), [steady.core.main.weightsHash], file: file, line: line)

        let h = try cleanLeaveRun(rounds: 4, adjust)
        XCTAssertEqual(h.core.main.weightsHash, steady.core.main.weightsHash, "a clean leave changed the run's weights", file: file, line: line)
    }

    /// A run of `rounds` rounds on a new server: a leaves cleanly after one merge of its own, b stays,
    /// c takes a's head once it is free. Returns the server once every worker ended on its weights.
    private func cleanLeaveRun(rounds: Int, _ adjust: @escaping (inout LoRAConfig) -> Void) throws -> ServerHarness {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), rounds: rounds, lte: adjust)
        let a = try worker("a", heads: [], maxHeads: 1), b = try worker("b", heads: [], maxHeads: 1), c = try worker("c", heads: [], maxHeads: 1)
        let leaving = Background { try a.run(over: self.link(h), rounds: 1) }
        let staying = Background { try b.run(over: self.link(h)) }
        _ = try leaving.value(seconds: 120)
        XCTAssertEqual(h.core.membership.freeHeads, a.heads, "the leaving worker's head is not free")
        let taking = Background { try c.run(over: self.link(h)) }
        let hashes = [try staying.value(seconds: 120), try taking.value(seconds: 120)]
        XCTAssertEqual(c.heads, a.heads, "the free head was not handed out")
        XCTAssertEqual(Set(hashes), [h.core.main.weightsHash], "a worker ended on other weights than the server's")
        XCTAssertEqual(h.core.round, rounds)
        return h
    }

    // MARK: - Helpers

    private func worker(_ id: String, heads: [Int], maxHeads: Int = 0) throws -> WorkerCore {
        let vocab = ServerHarness.model.vocabSize
        let url = try makeTemporaryDirectory().appendingPathComponent("train.bin")
        try TokenShard.write((0..<8192).map { Int32(($0 * 7 + $0 / 5) % vocab) }, vocabSize: vocab, to: url)
        let core = WorkerCore(id: id, heads: heads, maxHeads: maxHeads, train: try TokenShard(contentsOf: url, vocabSize: vocab), vocabSize: vocab,
                              fingerprint: nil)
        core.log = { _ in }
        return core
    }

    /// Requests as they cross the wire: encoded (and signed with `key`) by the worker's codec, decoded
    /// and checked by the server's (which knows the harness's identities), answered, decoded back.
    private func link(_ h: ServerHarness, key: IdentityKey? = nil) -> WorkerCore.Exchange {
        let workerCodec = WireCodec(signer: key)
        let serverCodec = WireCodec(verifier: h.core.options.identities)
        return { make in
            let frame = try workerCodec.encode(make())
            let reply: WireMessage
            do { reply = h.core.handle(try serverCodec.decode(frame), frameBytes: frame.count) } catch let e as WireError {
                reply = .error(ErrorMessage(refusing: e))
            }
            return try workerCodec.decode(try serverCodec.encode(reply))
        }
    }

    private func pushTogether(_ triples: [(WorkerCore, ServerHarness, IdentityKey?)]) throws -> [WorkerCore.PushOutcome] {
        let rounds = try triples.map { try $0.0.trainRound() }
        let pushes = zip(triples, rounds).map { t, round in Background { try t.0.push(round, over: self.link(t.1, key: t.2)) } }
        return try pushes.map { try $0.value() }
    }
}
