import Foundation
import LTETestSupport
import XCTest

/// Real processes over real nng sockets on loopback: a server, workers, rounds (DESIGN.md §4).
final class ClusterTests: LaunchedRunTestCase {

    /// 2 workers × 2 heads, 3 rounds over tcp: every node ends on the same weights, and they are the
    /// weights of the in-process `lte train --mode lte` run with the same seeds.
    func testServerAndTwoWorkersMatchInProcessTraining() throws {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let run = scratch.appendingPathComponent("run")
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "3", "--heads", "4"] + lteSettings)
        let workers = try [("0,1", "a"), ("2,3", "b")].map { heads, id in
            try BackgroundLTE("worker \(id)", ["worker", "--server", address, "--heads", heads, "--data", data, "--id", id])
        }
        for w in workers { XCTAssertEqual(w.wait(seconds: 120), 0, "\(w.name):\n\(w.output)") }
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)

        let lines = try rounds(run)
        XCTAssertEqual(lines.count, 3)
        for (i, l) in lines.enumerated() {
            XCTAssertEqual(l["round"] as? Int, i + 1)
            XCTAssertEqual(l["heads"] as? [Int], [0, 1, 2, 3])
            for key in ["train_loss", "bytes_in", "bytes_out", "merge_ms", "round_ms"] { XCTAssertNotNil(l[key], key) }
        }
        let serverHash = lines.last!["weights_hash"] as? String
        XCTAssertEqual(workers[0].finalHash, serverHash)
        XCTAssertEqual(workers[1].finalHash, serverHash)

        let localHash = try inProcessHash(heads: 4, iterations: 15)
        XCTAssertEqual(localHash, serverHash, "distributed and in-process LTE differ")
    }

    /// A worker killed mid-run: the round closes at quorum after the timeout without its heads; the
    /// restarted worker rejoins, and its heads' work lands in a later merge.
    func testKilledWorkerRoundClosesAtQuorumAndWorkerRejoins() throws {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let run = scratch.appendingPathComponent("run")
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "8", "--heads", "4", "--quorum", "2", "--round-timeout", "1.5"]
                                                 + lteSettings)
        let steady = try BackgroundLTE("steady", ["worker", "--server", address, "--heads", "0,1", "--data", data, "--id", "steady"])
        var flaky = try BackgroundLTE("flaky", ["worker", "--server", address, "--heads", "2,3", "--data", data, "--id", "flaky"])
        // Let a round or two pass with everyone, then kill the flaky worker.
        let end = Date().addingTimeInterval(60)
        while Date() < end, ((try? rounds(run))?.count ?? 0) < 2 { Thread.sleep(forTimeInterval: 0.05) }
        flaky.kill9()
        while Date() < end, !(((try? rounds(run)) ?? []).contains { ($0["heads"] as? [Int]) == [0, 1] }) { Thread.sleep(forTimeInterval: 0.1) }
        flaky = try BackgroundLTE("flaky again", ["worker", "--server", address, "--heads", "2,3", "--data", data, "--id", "flaky"])
        XCTAssertEqual(steady.wait(seconds: 120), 0, steady.output)
        XCTAssertEqual(flaky.wait(seconds: 60), 0, flaky.output)
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)

        let lines = try rounds(run)
        XCTAssertEqual(lines.map { $0["round"] as? Int }, (1...8).map { $0 })
        let heads = lines.map { $0["heads"] as? [Int] ?? [] }
        XCTAssertTrue(heads.contains([0, 1]), "no round closed at quorum without the killed worker: \(heads)")
        XCTAssertEqual(heads.last, [0, 1, 2, 3], "the restarted worker's heads never merged again: \(heads)")
        XCTAssertEqual(steady.finalHash, lines.last!["weights_hash"] as? String)
        XCTAssertEqual(flaky.finalHash, lines.last!["weights_hash"] as? String)
    }

    func testBadFlagsAndUnreachableServerGiveOneErrorLine() throws {
        try LTEBinary.fail(["worker", "--server", "tcp://127.0.0.1:\(freeLoopbackPort())", "--heads", "0", "--data", data,
                            "--connect-timeout", "1"], "cannot reach the server")
        try LTEBinary.fail(["worker", "--server", "tcp://127.0.0.1:1", "--heads", "x", "--data", data], "--heads")
        try LTEBinary.fail(["server", "--listen", "tcp://127.0.0.1:1", "--run", scratch.appendingPathComponent("r").path,
                            "--config", "configs/tiny.json", "--rounds", "0"], "--rounds")
        try LTEBinary.fail(["launch", "--config", "configs/tiny.json", "--data", scratch.appendingPathComponent("nothing").path,
                            "--run", scratch.appendingPathComponent("r2").path], "nothing")
    }

    /// A worker whose config differs from the server's is refused before it trains.
    func testConfigMismatchIsRefused() throws {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", scratch.appendingPathComponent("run").path,
                                                  "--config", "configs/tiny.json", "--data", data, "--rounds", "1", "--heads", "1"])
        defer { server.kill9() }
        let other = scratch.appendingPathComponent("other.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: packageRoot.appendingPathComponent("configs/tiny.json"))) as! [String: Any]
        var training = json["training"] as! [String: Any]
        training["learning_rate"] = 0.5
        json["training"] = training
        try JSONSerialization.data(withJSONObject: json).write(to: other)
        try LTEBinary.fail(["worker", "--server", address, "--heads", "0", "--data", data, "--config", other.path], "differs from the server")
    }
}

/// The merge history of a served run (DESIGN.md §5), through the commands users run and stock git.
final class HistoryCommandTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lte-history-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        try LTEBinary.succeed(["data", "synth", "--out", scratch.appendingPathComponent("data").path, "--bytes", "200000"])
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    func git(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    func testLaunchedRunHasAReplayableGitHistory() throws {
        let run = scratch.appendingPathComponent("run").path, data = scratch.appendingPathComponent("data").path
        try LTEBinary.succeed(["launch", "--workers", "2", "--heads-per-worker", "2", "--config", "configs/tiny.json",
                               "--data", data, "--run", run, "--rounds", "4", "--set", "lte.rank=4"])
        let log = try LTEBinary.succeed(["log", "--run", run]).stdout.split(separator: "\n")
        XCTAssertEqual(log.count, 5, "rounds 4…1 and the root:\n\(log)")
        XCTAssertTrue(log.first?.contains("round 4") ?? false)
        let show = try LTEBinary.succeed(["show", "--run", run, "3"]).stdout
        XCTAssertTrue(show.contains("round  3") && show.contains("heads  0,1,2,3"), show)
        let lastHash = try String(contentsOfFile: run + "/rounds.jsonl", encoding: .utf8).split(separator: "\n").last
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }?["weights_hash"] as? String
        for threads in ["1", "2"] {
            let out = scratch.appendingPathComponent("replay-\(threads)").path
            let replay = try LTEBinary.succeed(["replay", "--run", run, "--to", "main", "--out", out, "--threads", threads]).stdout
            XCTAssertTrue(replay.contains(lastHash ?? "none"), "replay at \(threads) threads does not reach the server's weights:\n\(replay)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        }
        try LTEBinary.succeed(["fsck", "--run", run])
        let (status, fsck) = try git(["--git-dir", run + "/history.git", "fsck"])
        XCTAssertEqual(status, 0, fsck)
        let (_, graph) = try git(["--git-dir", run + "/history.git", "log", "--oneline", "--graph", "main"])
        XCTAssertTrue(graph.contains("*-."), "no octopus merge in:\n\(graph)")
        try LTEBinary.fail(["show", "--run", run, "nosuch"], "unknown revision")

        // A new line of training from round 2, on its own branch; main is untouched.
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let server = try BackgroundLTE("branch server", ["server", "--listen", address, "--run", run, "--config", "configs/tiny.json",
                                                         "--data", data, "--rounds", "3", "--heads", "4", "--set", "lte.rank=4",
                                                         "--from", "2", "--branch", "alt"])
        try LTEBinary.succeed(["worker", "--server", address, "--heads", "0,1,2,3", "--data", data])
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)
        let alt = try LTEBinary.succeed(["log", "--run", run, "--branch", "alt"]).stdout.split(separator: "\n")
        XCTAssertEqual(alt.count, 4, "rounds 3, 2, 1, 0 on the new line:\n\(alt)")
        XCTAssertEqual(try LTEBinary.succeed(["log", "--run", run]).stdout.split(separator: "\n").count, 5, "main changed")
        XCTAssertTrue(try LTEBinary.succeed(["fsck", "--run", run]).stdout.contains("alt, main"))
        try LTEBinary.fail(["log", "--run", scratch.path], "not a run directory")
    }

    /// kill -9 of the server mid-run, then a restart on the same history: no round lost or duplicated,
    /// the workers carry on by themselves, fsck is clean, and everyone ends on the history's weights.
    func testServerKilledMidRunResumesFromHistory() throws {
        let run = scratch.appendingPathComponent("run"), data = scratch.appendingPathComponent("data").path
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let serverArgs = ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json", "--data", data,
                          "--rounds", "8", "--heads", "2", "--set", "lte.rank=4"]
        let workers = try runKillingServerMidRun(serverArgs, address: address, run: run, data: data, afterRounds: 3)

        let rounds = try LTEBinary.succeed(["log", "--run", run.path]).stdout.split(separator: "\n")
            .compactMap { line in line.split(separator: " ").firstIndex(of: "round").map { Int(line.split(separator: " ")[$0 + 1])! } }
        XCTAssertEqual(rounds, Array((0...8).reversed()), "rounds lost or duplicated")
        try LTEBinary.succeed(["fsck", "--run", run.path])
        let replay = try LTEBinary.succeed(["replay", "--run", run.path, "--out", scratch.appendingPathComponent("x").path]).stdout
        for w in workers { XCTAssertTrue(replay.contains(w.finalHash ?? "none"), "\(w.name) ends on other weights than the history") }
    }
}
