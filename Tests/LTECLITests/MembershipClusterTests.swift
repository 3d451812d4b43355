import Foundation
import LTETestSupport
import XCTest

/// Open membership with real processes over tcp loopback: identities from `lte keys`, heads handed
/// out by the server, a worker leaving cleanly (`--rounds`) and another taking its heads.
final class MembershipClusterTests: LaunchedRunTestCase {

    /// Worker a takes 2 free heads and leaves cleanly after 2 rounds; `lte status` then lists b and a's
    /// heads as free with their state kept; c takes them. The run ends on the weights of the
    /// in-process run with the same seeds, bit for bit, and `lte fsck` is clean.
    func testCleanLeavesEndBitIdenticalToInProcessTraining() throws {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let run = scratch.appendingPathComponent("run")
        for name in ["a", "b", "c"] { try LTEBinary.succeed(["keys", "add", "--run", run.path, name]) }
        let key = { (name: String) in run.appendingPathComponent("keys/\(name).key").path }
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "4", "--heads", "4", "--quorum", "4"] + lteSettings)
        let a = try BackgroundLTE("a", ["worker", "--server", address, "--heads", "auto", "--max-heads", "2", "--rounds", "2",
                                        "--data", data, "--key", key("a")])
        let b = try BackgroundLTE("b", ["worker", "--server", address, "--heads", "auto", "--max-heads", "2", "--data", data, "--key", key("b")])
        XCTAssertEqual(a.wait(seconds: 120), 0, a.output)
        XCTAssertTrue(a.output.contains("left at round 2"), a.output)

        let status = try LTEBinary.succeed(["status", address])
        XCTAssertTrue(status.stdout.contains("worker b: heads="), status.stdout)
        XCTAssertTrue(status.stdout.contains("handed over by a at round 2"), status.stdout)

        let c = try BackgroundLTE("c", ["worker", "--server", address, "--heads", "auto", "--max-heads", "2", "--data", data, "--key", key("c")])
        for w in [b, c] { XCTAssertEqual(w.wait(seconds: 120), 0, "\(w.name):\n\(w.output)") }
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)

        let served = try XCTUnwrap(try rounds(run).last?["weights_hash"] as? String)
        XCTAssertEqual(c.finalHash, served)
        let localHash = try inProcessHash(heads: 4, iterations: 20)
        XCTAssertEqual(localHash, served, "workers coming and going by clean leaves changed the weights")
        try LTEBinary.succeed(["fsck", "--run", run.path])
        let round3 = try LTEBinary.succeed(["show", "--run", run.path, "3"])
        XCTAssertTrue(round3.stdout.contains("membership.head"), round3.stdout)
    }

    /// A worker without a key, or with a revoked one, is refused with one error line.
    func testUnknownAndRevokedIdentitiesAreRefused() throws {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let run = scratch.appendingPathComponent("run")
        try LTEBinary.succeed(["keys", "add", "--run", run.path, "a"])
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "2", "--heads", "2"] + lteSettings)
        defer { server.kill9() }
        let anonymous = try LTEBinary.run(["worker", "--server", address, "--heads", "auto", "--data", data, "--id", "a", "--connect-timeout", "20"])
        XCTAssertNotEqual(anonymous.status, 0)
        XCTAssertTrue(anonymous.stderr.contains("error: ") && anonymous.stderr.contains("not signed"), anonymous.stderr)
        try LTEBinary.succeed(["keys", "revoke", "--run", run.path, "a"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("keys/a.key").path))
        let bad = try LTEBinary.run(["keys", "add", "--run", run.path, "a"])
        XCTAssertTrue(bad.stderr.hasPrefix("error: ") && bad.stderr.contains("never reused"), bad.stderr)
    }

    /// Issue 20, item 9: a second process with the same --id and other heads, and a worker asking
    /// for a head another holds, are refused at hello (before any training), with one error line;
    /// the run goes on with the workers it admitted.
    func testSameIdWithOtherHeadsAndOverlappingHeadsAreRefusedAtHello() throws {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let run = scratch.appendingPathComponent("run")
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "2", "--heads", "4", "--quorum", "4"] + lteSettings)
        defer { server.kill9() }
        let w = try BackgroundLTE("w", ["worker", "--server", address, "--heads", "0,1", "--id", "w", "--data", data])
        defer { w.kill9() }
        // The quorum of 4 holds round 1 open until heads 2 and 3 come: w stays bound to 0 and 1.
        let deadline = Date().addingTimeInterval(60)
        while !server.output.contains("worker w joined"), Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        XCTAssertTrue(server.output.contains("worker w joined with heads [0, 1]"), server.output)

        let twin = try LTEBinary.run(["worker", "--server", address, "--heads", "2,3", "--id", "w", "--data", data, "--connect-timeout", "20"])
        XCTAssertNotEqual(twin.status, 0, twin.summary)
        XCTAssertEqual(twin.stderrLines.count, 1, twin.summary)
        XCTAssertTrue(twin.stderr.hasPrefix("error: ") && twin.stderr.contains("worker w already holds heads [0, 1]")
                      && twin.stderr.contains("--id"), twin.stderr)
        let overlap = try LTEBinary.run(["worker", "--server", address, "--heads", "1,2", "--id", "v", "--data", data, "--connect-timeout", "20"])
        XCTAssertNotEqual(overlap.status, 0, overlap.summary)
        XCTAssertTrue(overlap.stderr.hasPrefix("error: ") && overlap.stderr.contains("head 1 is held by worker w"), overlap.stderr)
        XCTAssertFalse(server.output.contains("round 1 merged"), "a refused worker was refused only after a round:\n\(server.output)")

        let x = try BackgroundLTE("x", ["worker", "--server", address, "--heads", "2,3", "--id", "x", "--data", data])
        for p in [w, x] { XCTAssertEqual(p.wait(seconds: 120), 0, "\(p.name):\n\(p.output)") }
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)
        XCTAssertNotNil(w.finalHash)
        XCTAssertEqual(w.finalHash, x.finalHash)
        let round1 = try LTEBinary.succeed(["show", "--run", run.path, "1"])
        XCTAssertTrue(round1.stdout.contains("from w: heads 0,1") && round1.stdout.contains("from x: heads 2,3"), round1.stdout)
    }
}
