import Foundation
import LTETestSupport
import XCTest

/// `lte.outer nesterov` end to end (issue 17, item 4): real processes over tcp on loopback step W
/// with the outer optimizer exactly as the in-process run does, the history replays it and fsck
/// checks it, and a server killed mid-run resumes with the velocity it had.
final class OuterOptimizerRunTests: LaunchedRunTestCase {
    private let outer = ["--set", "lte.outer=nesterov", "--set", "lte.outer_learning_rate=0.7", "--set", "lte.outer_momentum=0.9"]

    /// `lte launch` (2 workers × 2 heads, 4 rounds, tcp): every worker checks the server's hash each
    /// round; the last is the in-process run's and the replayed history's; fsck is clean; and the
    /// outer step really moved W (the plain merge ends elsewhere).
    func testNesterovLaunchMatchesInProcessReplayAndFsck() throws {
        // Overlapped rounds apply merge k one round late, and workers holding nf4 frozen weights do
        // not merge W at all (the server steps it and sends it requantized): both still end on the same bits.
        for (name, extra) in [("nesterov", [String]()), ("nesterov-overlap", ["--set", "lte.overlap=true"]),
                              ("nesterov-nf4", ["--set", "lte.frozen_weights=nf4", "--set", "lte.push_format=int8"])] {
            let run = scratch.appendingPathComponent(name)
            try LTEBinary.succeed(["launch", "--workers", "2", "--heads-per-worker", "2", "--config", "configs/tiny.json", "--data", data,
                                   "--run", run.path, "--rounds", "4", "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())"] + lteSettings + outer + extra)
            let served = try XCTUnwrap(try rounds(run).last?["weights_hash"] as? String)
            XCTAssertEqual(try inProcessHash(heads: 4, iterations: 20, outer + extra), served, "\(name): distributed and in-process runs differ")
            let replay = try LTEBinary.succeed(["replay", "--run", run.path, "--to", "main", "--out", scratch.appendingPathComponent(name + "-replay").path])
            XCTAssertTrue(replay.stdout.contains(served), "\(name): replay does not reach the server's weights:\n\(replay.stdout)")
            XCTAssertTrue(try LTEBinary.succeed(["fsck", "--run", run.path]).stdout.contains("fsck: clean"))
        }
        XCTAssertNotEqual(try inProcessHash(heads: 4, iterations: 20), try inProcessHash(heads: 4, iterations: 20, outer))
    }

    /// kill -9 of the server after a few rounds, restart on the same history: fsck replays every
    /// round from the root carrying the velocity along, so the restarted server's rounds (and the
    /// velocity its snapshot stores) match only if it resumed with exactly the velocity it had.
    func testServerKilledMidRunResumesTheVelocity() throws {
        let run = scratch.appendingPathComponent("run")
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let serverArgs = ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json", "--data", data,
                          "--rounds", "8", "--heads", "2", "--snapshot-every", "3"] + lteSettings + outer
        let workers = try runKillingServerMidRun(serverArgs, address: address, run: run, data: data, afterRounds: 4)
        let fsck = try LTEBinary.succeed(["fsck", "--run", run.path]).stdout
        XCTAssertTrue(fsck.contains("9 rounds replayed and matched") && fsck.contains("3 snapshots matched"), fsck)
        let replay = try LTEBinary.succeed(["replay", "--run", run.path, "--to", "7", "--out", scratch.appendingPathComponent("x").path]).stdout
        XCTAssertTrue(replay.contains("from the snapshot of round 6"), "replay starts from the velocity a restarted server stored:\n\(replay)")
        let final = try LTEBinary.succeed(["replay", "--run", run.path, "--out", scratch.appendingPathComponent("y").path]).stdout
        for w in workers { XCTAssertTrue(final.contains(w.finalHash ?? "none"), "\(w.name) ends on other weights than the history") }
    }

    /// A bad value is one `error:` line naming what was wrong (and the choices).
    func testBadOuterValuesAreRefusedInOneLine() throws {
        let base = ["train", "--mode", "lte", "--config", "configs/tiny.json", "--data", data, "--run", scratch.appendingPathComponent("bad").path]
        try LTEBinary.fail(base + ["--set", "lte.outer=adam"], "lte.outer must be one of none, nesterov (got \"adam\")")
        try LTEBinary.fail(base + ["--set", "lte.outer_learning_rate=-1"], "lte.outer_learning_rate must be in (0, 10]")
        try LTEBinary.fail(base + ["--set", "lte.outer_momentum=1.5"], "lte.outer_momentum must be in [0, 1)")
    }
}
