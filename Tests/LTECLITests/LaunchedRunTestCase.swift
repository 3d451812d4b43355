import Foundation
import LTETestSupport
import XCTest

/// What the tests of launched runs share: a scratch directory per test holding a synthetic data
/// directory, and small LTE settings on the tiny model (4 heads of rank 4, merge every 5 steps).
class LaunchedRunTestCase: XCTestCase {
    var scratch: URL!
    var data: String { scratch.appendingPathComponent("data").path }
    let lteSettings = ["--set", "lte.rank=4", "--set", "lte.alpha=16", "--set", "lte.merge_every=5", "--set", "training.learning_rate=3e-3"]

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lte-run-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        try LTEBinary.succeed(["data", "synth", "--out", data, "--bytes", "200000"])
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// The final weights hash of `lte train --mode lte` on the tiny config with these settings (and
    /// `settings` besides) and `heads` heads: what a distributed run of `iterations` / merge_every
    /// rounds must end on. Each call trains in a run directory of its own.
    func inProcessHash(heads: Int, iterations: Int, _ settings: [String] = []) throws -> String? {
        let local = try LTEBinary.succeed(["train", "--mode", "lte", "--config", "configs/tiny.json", "--data", data,
                                           "--run", scratch.appendingPathComponent("local-\(UUID().uuidString)").path, "--iterations", String(iterations),
                                           "--set", "lte.heads=\(heads)"] + lteSettings + settings)
        return local.stdout.range(of: "weights ", options: .backwards).map { String(local.stdout[$0.upperBound...].prefix(64)) }
    }
}

extension XCTestCase {
    /// RUN/rounds.jsonl, a JSON object per round.
    func rounds(_ run: URL) throws -> [[String: Any]] {
        try String(contentsOf: run.appendingPathComponent("rounds.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// Starts `lte server` with `serverArgs` (listening on `address`, run directory `run`) and a
    /// worker `w<h>` on `data` for each head h, kill -9s the server once `afterRounds` rounds are in
    /// rounds.jsonl, restarts it with the same arguments, and checks that everyone finishes and the
    /// server said it resumed. Returns the workers, for their final hashes.
    func runKillingServerMidRun(_ serverArgs: [String], address: String, run: URL, data: String, heads: [String] = ["0", "1"],
                                afterRounds: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [BackgroundLTE] {
        var server = try BackgroundLTE("server", serverArgs)
        let workers = try heads.map { h in
            try BackgroundLTE("worker \(h)", ["worker", "--server", address, "--heads", h, "--data", data, "--id", "w\(h)"])
        }
        let end = Date().addingTimeInterval(60)
        func roundsLogged() -> Int {
            ((try? String(contentsOf: run.appendingPathComponent("rounds.jsonl"), encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        while Date() < end && roundsLogged() < afterRounds { Thread.sleep(forTimeInterval: 0.02) }
        server.kill9()
        Thread.sleep(forTimeInterval: 0.5)
        server = try BackgroundLTE("server again", serverArgs)
        for w in workers { XCTAssertEqual(w.wait(seconds: 120), 0, "\(w.name):\n\(w.output)", file: file, line: line) }
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output, file: file, line: line)
        XCTAssertTrue(server.output.contains("resumed"), server.output, file: file, line: line)
        return workers
    }
}
