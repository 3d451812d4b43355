import Foundation
import LTETestSupport
import XCTest

/// Workers that start together but not at the same instant: with `--await-heads` (which `lte launch`
/// passes for all its heads) no round closes before every head has joined, so the run merges every
/// head from round 1 and ends on the in-process run's bits whatever the start-up times. Without
/// it, a round closes once every head some worker holds is in — round 1 with the first worker's
/// heads alone (the quorum of a 2-head run is 1).
final class AwaitHeadsTests: LaunchedRunTestCase {
    /// Worker 1 starts 3 s after worker 0 joined: long after worker 0 pushed round 1 (5 steps of the
    /// tiny model take milliseconds).
    private func runWithLateSecondWorker(_ extra: [String]) throws -> (round1: String, served: String, run: URL) {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let run = scratch.appendingPathComponent("run-\(UUID().uuidString)")
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "3", "--heads", "2"] + extra + lteSettings)
        defer { server.kill9() }
        let first = try BackgroundLTE("w0", ["worker", "--server", address, "--heads", "0", "--id", "w0", "--data", data])
        defer { first.kill9() }
        let deadline = Date().addingTimeInterval(60)
        while !server.output.contains("worker w0 joined"), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: 3)
        let second = try BackgroundLTE("w1", ["worker", "--server", address, "--heads", "1", "--id", "w1", "--data", data])
        for w in [first, second] { XCTAssertEqual(w.wait(seconds: 120), 0, "\(w.name):\n\(w.output)") }
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)
        let round1 = try LTEBinary.succeed(["show", "--run", run.path, "1"]).stdout
        let served = try XCTUnwrap(try rounds(run).last?["weights_hash"] as? String)
        return (round1, served, run)
    }

    func testAwaitedHeadsMakeALateWorkersRunEqualTheInProcessRun() throws {
        let awaited = try runWithLateSecondWorker(["--await-heads", "2"])
        XCTAssertTrue(awaited.round1.contains("heads  0,1 "), awaited.round1)
        XCTAssertEqual(awaited.served, try inProcessHash(heads: 2, iterations: 15))
        try LTEBinary.succeed(["fsck", "--run", awaited.run.path])

        // What --await-heads prevents: without it round 1 merged worker 0's head alone.
        let eager = try runWithLateSecondWorker([])
        XCTAssertTrue(eager.round1.contains("heads  0 "), eager.round1)
        XCTAssertNotEqual(eager.served, awaited.served)
    }

    func testAwaitHeadsOutOfRangeIsOneErrorLine() throws {
        let run = scratch.appendingPathComponent("bad")
        let r = try LTEBinary.run(["server", "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())", "--run", run.path,
                                   "--config", "configs/tiny.json", "--data", data, "--heads", "2", "--await-heads", "3"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderrLines.count, 1, r.summary)
        XCTAssertTrue(r.stderr.hasPrefix("error: --await-heads 3 must be between 0 and the run's 2 heads"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path), "a refused server wrote its run directory")
    }
}
