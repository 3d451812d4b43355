import Foundation
import LTEBase
@testable import LTECluster
import LTEData
import LTENet
import LTENumerics
import LTETestSupport
import XCTest

/// `WorkerCore` against a real `ServerCore` on a real history, in process: the worker's requests
/// go straight to the server's handler (the entry point its network threads use), and pushes of a
/// round that needs several workers run on threads of their own, as they would in their processes.
final class WorkerCoreTests: XCTestCase {
    /// Two workers join at round 0, push for round 1 and apply its merge: both hold the server's
    /// weights bit for bit, with the hash the history recorded, at the round's commit.
    func testJoinPushAndMergeHoldTheServersWeights() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        for w in [a, b] { try w.join(over: link(h)) }
        XCTAssertEqual(a.round, 0)
        XCTAssertEqual(a.baseCommit, h.base, "a worker at round 0 trains from the root commit")
        XCTAssertEqual(a.weightsHash, h.core.main.weightsHash)

        let outcomes = try pushTogether([(a, h), (b, h)])
        XCTAssertEqual(outcomes, [.merged(round: 1), .merged(round: 1)])
        let head = try h.history.head()
        XCTAssertEqual(head.round, 1)
        for w in [a, b] {
            XCTAssertEqual(w.round, 1)
            XCTAssertEqual(w.baseCommit, head.commit)
            XCTAssertEqual(w.weightsHash, head.weightsHash)
            XCTAssertEqual(w.main!.model.params.array, h.core.main.model.params.array, "\(w.id) holds other bits than the server")
        }
        XCTAssertEqual(try h.rounds().first?.heads, [0, 1])
    }

    /// A head that misses a round loses nothing: its push, stale once the round closed at quorum
    /// without it, makes the worker rejoin with its heads as trained, and that training lands in the
    /// next merge it joins.
    func testAHeadThatMissesARoundLosesNothing() throws {
        let h = try ServerHarness(quorum: 1, roundTimeout: .milliseconds(200))
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        for w in [a, b] { try w.join(over: link(h)) }

        XCTAssertEqual(try a.push(a.trainRound(), over: link(h)), .merged(round: 1))
        XCTAssertEqual(try h.rounds().first?.heads, [0], "round 1 should close at quorum without head 1")
        let late = try b.trainRound()
        let trained = b.headFactors[0].array
        XCTAssertEqual(try b.push(late, over: link(h)), .rejoined(round: 1))
        XCTAssertEqual(b.weightsHash, h.core.main.weightsHash)
        XCTAssertEqual(b.headFactors[0].array, trained, "rejoining reset the head's factors: its missed round's training is lost")

        let trainedA = try a.trainRound(), trainedB = try b.trainRound()
        let pushed = b.headFactors[0].array
        let outcomes = try pushTogether([(a, h), (b, h)], trained: [trainedA, trainedB])
        XCTAssertEqual(outcomes, [.merged(round: 2), .merged(round: 2)])
        XCTAssertEqual(try h.rounds().first?.heads, [0, 1])
        // Reset-less merge: head 1 had never merged, so all of BA — both rounds' training — went in.
        XCTAssertEqual(h.core.main.lastMerged[1]?.array, pushed)
        XCTAssertEqual(a.weightsHash, h.core.main.weightsHash)
        XCTAssertEqual(b.weightsHash, h.core.main.weightsHash)
        XCTAssertEqual(try h.history.fsck().rounds, 3)
    }

    /// The server dies after committing round 2 but before answering worker a; a new server is
    /// started on the history. Its push for round 2 is stale there, so a rejoins, takes round 2's
    /// weights (which b got from the first server), and both merge round 3 on the new one.
    func testWorkerResynchronisesWithARestartedServer() throws {
        let first = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        for w in [a, b] { try w.join(over: link(first)) }
        XCTAssertEqual(try pushTogether([(a, first), (b, first)]), [.merged(round: 1), .merged(round: 1)])

        var second: ServerHarness?
        let restarting: WorkerCore.Exchange = { make in
            if let second { return second.core.handle(make(), frameBytes: 1000) }
            _ = first.core.handle(make(), frameBytes: 1000)          // committed; the answer is lost with the server
            second = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), restarting: first)
            return second!.core.handle(make(), frameBytes: 1000)     // the request sent again, to the new server
        }
        let trainedB = try b.trainRound()
        let bPush = Background { try b.push(trainedB, over: self.link(first)) }
        XCTAssertEqual(try a.push(a.trainRound(), over: restarting), .rejoined(round: 2))
        XCTAssertEqual(try bPush.value(), .merged(round: 2))
        let restarted = try XCTUnwrap(second)
        XCTAssertEqual(restarted.core.round, 2)
        XCTAssertEqual(a.baseCommit, b.baseCommit)
        XCTAssertEqual(a.weightsHash, b.weightsHash)
        XCTAssertEqual(a.weightsHash, restarted.core.main.weightsHash)

        XCTAssertEqual(try pushTogether([(a, restarted), (b, restarted)]), [.merged(round: 3), .merged(round: 3)])
        XCTAssertEqual(a.weightsHash, try restarted.history.head().weightsHash)
        XCTAssertEqual(b.weightsHash, a.weightsHash)
        XCTAssertEqual(try restarted.rounds().map(\.round), [3, 2, 1, 0], "a round lost or duplicated")
        XCTAssertEqual(try restarted.history.fsck().rounds, 4)
    }

    // MARK: - Helpers

    /// A worker on a token stream of the harness model's vocabulary, long enough for every head's shard.
    private func worker(_ id: String, heads: [Int]) throws -> WorkerCore {
        let vocab = ServerHarness.model.vocabSize
        let url = try makeTemporaryDirectory().appendingPathComponent("train.bin")
        try TokenShard.write((0..<8192).map { Int32(($0 * 7 + $0 / 5) % vocab) }, vocabSize: vocab, to: url)
        let core = WorkerCore(id: id, heads: heads, train: try TokenShard(contentsOf: url, vocabSize: vocab), vocabSize: vocab, fingerprint: nil)
        core.log = { _ in }
        return core
    }

    /// The worker's requests handed straight to the harness's server.
    private func link(_ h: ServerHarness) -> WorkerCore.Exchange {
        { make in h.core.handle(make(), frameBytes: 1000) }
    }

    /// Each worker trains a round (unless given it trained) and pushes it, all at once on threads of
    /// their own, since a push waits for its round to close; returns their outcomes in order.
    private func pushTogether(_ pairs: [(WorkerCore, ServerHarness)], trained: [WorkerCore.TrainedRound]? = nil) throws -> [WorkerCore.PushOutcome] {
        let rounds = try trained ?? pairs.map { try $0.0.trainRound() }
        let pushes = zip(pairs, rounds).map { pair, round in
            Background { try pair.0.push(round, over: self.link(pair.1)) }
        }
        return try pushes.map { try $0.value() }
    }
}

/// A throwing call run on a thread of its own; `value()` waits for it.
final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?

    init(_ body: @escaping () throws -> T) {
        let t = Thread { [self] in result = Result { try body() }; done.signal() }
        t.start()
    }

    func value(seconds: Double = 60) throws -> T {
        guard done.wait(timeout: .now() + seconds) == .success else { throw LTEError("no answer within \(seconds) s") }
        done.signal()
        return try result!.get()
    }
}
