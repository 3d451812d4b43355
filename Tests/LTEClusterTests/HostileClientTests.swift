import Foundation
@testable import LTECluster
import LTENet
import LTENumerics
import LTEStore
import XCTest

/// Issue 20, items 12–14: what a client holding the run's secret could do to the round logic (found
/// by a hostile nng client against a live server), each driven through the server's handler.
final class HostileClientTests: XCTestCase {
    /// 12. Factors of 1e30 are finite, so they passed validation and overflowed in the merge: non-finite
    /// weights were committed and sent to every node. Now refused at once as beyond the model's bound;
    /// the round merges the honest head and the weights stay finite.
    func testHugeFinitePushNeverReachesTheWeights() throws {
        let h = try ServerHarness(quorum: 1, roundTimeout: .milliseconds(300))
        var huge = h.honestPush(worker: "b", heads: [1])
        huge.tensors[0].values = huge.tensors[0].values.map { _ in 1e30 }
        let attack = h.send(.push(huge))
        guard case .roundResult(let result)? = h.send(.push(h.honestPush(worker: "a", heads: [0]))).wait(seconds: 30) else {
            return XCTFail("the honest round did not close: \(h.log)")
        }
        XCTAssertEqual(result.headsMerged, [0])
        guard case .error(let e)? = attack.wait(seconds: 10) else { return XCTFail("the 1e30 push was not refused") }
        XCTAssertTrue(e.message.contains("beyond"), e.message)
        XCTAssertTrue(allFinite(h.core.main.model.params), "non-finite weights after the round")
        XCTAssertEqual(try h.history.fsck().rounds, 2)
    }

    /// 12. A head far beyond the round's median update, though under the absolute bound, is left out of
    /// the merge; round.json names it and why, replay reproduces the round, and the worker is told.
    func testOutlierHeadIsLeftOutOfTheMergeAndRecorded() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        var outlier = h.honestPush(worker: "b", heads: [1])
        outlier.tensors[0].values = outlier.tensors[0].values.map { $0 * 1000 }
        let b = h.send(.push(outlier)), a = h.send(.push(h.honestPush(worker: "a", heads: [0])))
        guard case .roundResult(let result)? = a.wait(seconds: 30) else { return XCTFail("the round did not close: \(h.log)") }
        XCTAssertEqual(result.headsMerged, [0])
        XCTAssertEqual(refusalCode(b.wait(seconds: 10)), .outOfBounds)
        XCTAssertTrue(h.log.contains { $0.hasPrefix("refused:") && $0.contains("head 1") && $0.contains("median") }, "\(h.log)")
        let record = try XCTUnwrap(try h.history.show("1").round)
        XCTAssertEqual(record.heads, [0])
        XCTAssertEqual(record.excluded?.map(\.head), [1])
        XCTAssertEqual(record.excluded?.first?.worker, "b")
        XCTAssertTrue(record.excluded?.first?.reason.contains("median") ?? false)
        XCTAssertEqual(try h.rounds()[0].tokens, h.tokens(heads: 1), "the left-out head's tokens were counted")
        XCTAssertEqual(try h.history.fsck().rounds, 2)
        // Honest rounds after it merge both heads, and record no exclusion.
        XCTAssertEqual(h.honestRound()?.headsMerged, [0, 1])
        XCTAssertNil(try h.history.show("2").round?.excluded)
    }

    /// 12. With both screens that refuse a push (absolute bound, median ratio) switched off, the check
    /// that the merge stays finite still leaves the 1e30 head out: nothing non-finite is committed.
    func testMergeThatCouldOverflowLeavesTheOffendingHeadOut() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60)) { $0.maxAbsValue = .infinity; $0.maxUpdateRatio = .infinity }
        var huge = h.honestPush(worker: "b", heads: [1])
        huge.tensors[0].values = huge.tensors[0].values.map { _ in 1e30 }
        let b = h.send(.push(huge)), a = h.send(.push(h.honestPush(worker: "a", heads: [0])))
        guard case .roundResult(let result)? = a.wait(seconds: 30) else { return XCTFail("the round did not close: \(h.log)") }
        XCTAssertEqual(result.headsMerged, [0])
        XCTAssertEqual(refusalCode(b.wait(seconds: 10)), .outOfBounds)
        XCTAssertTrue(allFinite(h.core.main.model.params))
        XCTAssertEqual(try h.history.show("1").round?.excluded?.map(\.head), [1])
        XCTAssertTrue(try h.history.show("1").round?.excluded?.first?.reason.contains("non-finite") ?? false)
    }

    /// 13. A push for round 2^62 is refused as stale, but the replay guard used to record it first,
    /// moving that worker's window so far ahead that every honest push of it was "too old". Only what
    /// validated is admitted now: the worker's next honest push is merged.
    func testFarFuturePushDoesNotLockTheWorkerOut() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        XCTAssertEqual(refusalCode(h.call(.push(h.honestPush(worker: "a", heads: [0], round: 1 << 62)))), .staleRound)
        XCTAssertEqual(refusalCode(h.call(.push(h.honestPush(worker: "b", heads: [1], base: String(repeating: "ab", count: 20))))), .staleRound)
        XCTAssertEqual(h.honestRound()?.headsMerged, [0, 1])
        XCTAssertEqual(h.honestRound()?.headsMerged, [0, 1])
    }

    /// 14. A captured hello sent again in a later round was new to the round-keyed replay guard and got
    /// a full welcome (weights and factors). Hellos now carry their time under the MAC: within the
    /// window the nonce is remembered, past it the hello is too old.
    func testCapturedHelloIsRefusedInALaterRound() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let hello = WireMessage.hello(HelloMessage(workerId: "a", headIds: [0], configFingerprint: Data(count: 32), nonce: 7))
        guard case .welcome? = h.call(hello) else { return XCTFail("hello not welcomed: \(h.log)") }
        XCTAssertEqual(h.honestRound()?.headsMerged, [0, 1])
        XCTAssertEqual(refusalCode(h.call(hello)), .unauthorized, "the captured hello was welcomed a round later")
        let old = HelloMessage(workerId: "a", headIds: [0], configFingerprint: Data(count: 32), nonce: 8,
                               sentAt: FreshnessGuard.nowMilliseconds() - 10 * 60 * 1000)
        XCTAssertEqual(refusalCode(h.call(.hello(old))), .unauthorized, "a ten-minute-old hello was welcomed")
        XCTAssertTrue(h.log.last?.contains("freshness window") ?? false, "\(h.log.last ?? "")")
        guard case .welcome(let w)? = h.call(.hello(HelloMessage(workerId: "a", headIds: [0], configFingerprint: Data(count: 32), nonce: 9))) else {
            return XCTFail("a fresh hello was refused")
        }
        XCTAssertEqual(w.round, 1)
    }

    private func allFinite(_ b: FloatBuffer) -> Bool { (0..<b.count).allSatisfy { b.pointer[$0].isFinite } }
}
