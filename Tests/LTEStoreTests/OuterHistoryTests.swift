import Foundation
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// A history written under `lte.outer nesterov` (issue 17, item 4): replay rebuilds the outer
/// optimizer's velocity along with the weights, from the root or from a snapshot that stores it,
/// so every round replays bit for bit, fsck checks the velocity too, and a resumed server gets it back.
final class OuterHistoryTests: XCTestCase {
    private func outerRun() throws -> SimulatedServer {
        try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"), outer: true)
    }

    func testEveryRoundReplaysBitExactlyWithItsVelocity() throws {
        let s = try outerRun()
        let plain = try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
        XCTAssertNotEqual(bits(s.weightsAfter[7]!), bits(plain.weightsAfter[7]!), "the outer step changed nothing")
        for r in 1...7 {
            let weights = FloatBuffer(count: s.main.params.count)
            let (result, velocity) = try s.history.replayState(to: "\(r)", into: weights)
            XCTAssertEqual(bits(weights), bits(s.weightsAfter[r]!), "round \(r)")
            XCTAssertEqual(bits(try XCTUnwrap(velocity)), bits(s.velocityAfter[r]!), "velocity after round \(r)")
            // Rounds 3, 5 and 7 start from the snapshot before them, whose stored velocity they need.
            XCTAssertEqual(result.startRound, r.isMultiple(of: 2) ? r : r - 1, "round \(r)")
        }
        let round = try s.history.show("5")
        XCTAssertNil(round.files["outer/velocity.safetensors"], "only snapshots store the velocity")
        XCTAssertNotNil(try s.history.show("4").files["outer/velocity.safetensors"])
        XCTAssertEqual(try s.history.fsck().rounds, 8)
        assertLTEError(try s.history.roundDelta("3"), contains: "not low-rank")
    }

    func testResumedServerHoldsTheVelocityOfItsHead() throws {
        let s = try outerRun()
        let state = try s.history.resume()
        XCTAssertEqual(state.head.round, 7)
        XCTAssertEqual(bits(try XCTUnwrap(state.velocity)), bits(s.velocityAfter[7]!))
        // Carries on: the restarted server's rounds replay too (fsck rebuilds them from the root).
        let resumed = try SimulatedServer(resuming: s.history)
        try resumed.runRound(merged: ["a", "b"], snapshot: false)
        try resumed.runRound(merged: ["b"], snapshot: true)
        XCTAssertEqual(bits(try s.history.replay(to: "9").weights), bits(resumed.weightsAfter[9]!))
        XCTAssertEqual(try s.history.fsck().rounds, 10)
    }

    /// A snapshot's stored velocity changed after the fact: fsck and a replay starting there say so.
    func testTamperedVelocityIsDetected() throws {
        let s = try outerRun()
        let velocity = FloatBuffer(s.velocityAfter[4]!)
        let slot = s.history.velocitySlots[1]
        velocity[slot.offset + 3] += 1e-3
        try rewriteSnapshotVelocity(s.history, round: 4, with: try TensorSlot.encode(s.history.velocitySlots, from: velocity.pointer))
        assertLTEError(try s.history.fsck(), contains: "fsck:", "round 4", "velocity of the outer optimizer", "but the round recorded")
        assertLTEError(try s.history.replay(to: "5"), contains: "round 4", "velocity")
        XCTAssertNoThrow(try s.history.replay(to: "3"), "rounds before the damage still replay")
    }

    /// Gives round `round` another `outer/velocity.safetensors` (changing a blob's bytes in place
    /// would be caught as a corrupt object): the round and every later one are committed again with
    /// it and the line moved to them, as someone editing the history with git would.
    private func rewriteSnapshotVelocity(_ history: MergeHistory, round: Int, with data: Data) throws {
        let repo = history.repository
        var rewritten: [GitOID: GitOID] = [:]
        for commit in try repo.firstParentHistory(from: try history.tip()).reversed() {
            let record = try XCTUnwrap(try history.roundRecord(commit))
            guard record.round >= round else { continue }
            var files = try repo.files(inTree: commit.tree)
            if record.round == round { files[MergeHistory.Paths.velocity] = try repo.writeBlob(data) }
            rewritten[commit.id] = try repo.commit(tree: try repo.writeTree(files), parents: commit.parents.map { rewritten[$0] ?? $0 },
                                                   message: "round \(record.round), rewritten\n", updating: "refs/heads/main", expected: try history.tip())
        }
    }
}
