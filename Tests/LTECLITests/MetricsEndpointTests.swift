import Foundation
import LTETestSupport
import XCTest

/// `lte server --metrics` and `lte launch --metrics` as Prometheus sees them: real processes, real
/// HTTP over loopback, every value checked against the line rounds.jsonl wrote for the same round;
/// hostile HTTP clients beside the run change nothing in it.
final class MetricsEndpointTests: LaunchedRunTestCase {

    /// Worker a leaves cleanly after 2 rounds; the idle server's metrics then match rounds.jsonl's
    /// second line and list both heads free. Malformed requests keep coming while worker b takes the
    /// heads and finishes the run, which ends on the in-process run's weights, bit for bit.
    func testServerMetricsMatchRoundsLogAndHostileClientsChangeNothing() throws {
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let run = scratch.appendingPathComponent("run")
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "4", "--heads", "2", "--quorum", "2", "--metrics", "127.0.0.1:0"]
                                       + lteSettings)
        defer { server.kill9() }
        let port = try metricsPort(of: server)
        let a = try BackgroundLTE("a", ["worker", "--server", address, "--heads", "auto", "--max-heads", "2", "--rounds", "2", "--data", data, "--id", "a"])
        XCTAssertEqual(a.wait(seconds: 120), 0, a.output)

        let idle = HTTPProbe.samples(try XCTUnwrap(HTTPProbe.get(port: port)))
        try assertMatchesRoundsLog(idle, run: run)
        XCTAssertEqual(idle["lte_round"], 2)
        XCTAssertEqual(idle["lte_rounds_committed_total"], 2)
        XCTAssertEqual(idle["lte_workers_connected"], 0, "a worker that left is still counted")
        XCTAssertEqual(idle["lte_free_heads"], 2, "the heads a worker handed over are not free")

        // Hostile clients for the rest of the run (bounded in count and time).
        let hostileDone = DispatchSemaphore(value: 0)
        let hostileSent = Box(0)
        let serverPID = server.process.processIdentifier
        Thread.detachNewThread {
            let end = Date().addingTimeInterval(60)
            let requests: [[UInt8]] = [Array("POST /metrics HTTP/1.1\r\n\r\n".utf8), Array("GET /../../etc/passwd HTTP/1.1\r\n\r\n".utf8),
                                       [UInt8](repeating: 0xFF, count: 20_000), Array("GET /metrics HTTP/9\r\n\r\n".utf8), []]
            var sent = 0
            while Date() < end && kill(serverPID, 0) == 0 && sent < 400 {
                _ = HTTPProbe.exchange(port: port, requests[sent % requests.count], timeout: 1)
                sent += 1
            }
            hostileSent.set(sent)
            hostileDone.signal()
        }
        let b = try BackgroundLTE("b", ["worker", "--server", address, "--heads", "auto", "--max-heads", "2", "--data", data, "--id", "b"])
        var lastScrape: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(120)
        while b.process.isRunning && Date() < deadline {
            if let answer = HTTPProbe.get(port: port), HTTPProbe.status(answer) == 200 { lastScrape = HTTPProbe.samples(answer) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(b.wait(seconds: 120), 0, b.output)
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)
        XCTAssertEqual(hostileDone.wait(timeout: .now() + 90), .success)
        XCTAssertGreaterThan(hostileSent.get(), 0)
        // Whatever round the last scrape during b's rounds saw, it agrees with rounds.jsonl's line for it.
        if !lastScrape.isEmpty { try assertMatchesRoundsLog(lastScrape, run: run) }

        let served = try XCTUnwrap(rounds(run).last?["weights_hash"] as? String)
        XCTAssertEqual(b.finalHash, served)
        let localHash = try inProcessHash(heads: 2, iterations: 20)
        XCTAssertEqual(localHash, served, "the run beside the hostile HTTP clients ended on other weights")
        try LTEBinary.succeed(["fsck", "--run", run.path])
    }

    /// `lte launch --metrics` hands the address to its server: scraped mid-run, the values are those
    /// of rounds.jsonl's line for the round the scrape shows.
    func testLaunchPassesMetricsToItsServer() throws {
        let port = freeLoopbackPort()
        let run = scratch.appendingPathComponent("run")
        let launch = try BackgroundLTE("launch", ["launch", "--workers", "2", "--heads-per-worker", "1", "--config", "configs/tiny.json",
                                                  "--data", data, "--run", run.path, "--rounds", "40", "--metrics", "127.0.0.1:\(port)"] + lteSettings)
        defer { launch.kill9() }
        var scrape: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(120)
        while launch.process.isRunning && Date() < deadline && (scrape["lte_round"] ?? 0) < 1 {
            if let answer = HTTPProbe.get(port: port), HTTPProbe.status(answer) == 200 { scrape = HTTPProbe.samples(answer) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertEqual(launch.wait(seconds: 120), 0, launch.output)
        XCTAssertGreaterThanOrEqual(scrape["lte_round"] ?? 0, 1, "no scrape saw a round: \(launch.output)")
        try assertMatchesRoundsLog(scrape, run: run)
        // A round can close before the second worker's hello (its heads are not waited for), so the
        // scrape may see one worker or two; each holds one head, the rest are free.
        let workers = scrape["lte_workers_connected"] ?? -1
        XCTAssertTrue(workers == 1 || workers == 2, "\(scrape)")
        XCTAssertEqual(scrape["lte_free_heads"], 2 - workers)

        let bad = try LTEBinary.run(["launch", "--config", "configs/tiny.json", "--data", data, "--run", scratch.appendingPathComponent("bad").path,
                                     "--metrics", "localhost"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderrLines, ["error: --metrics localhost: expected HOST:PORT, e.g. 127.0.0.1:9464"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("bad").path), "a refused launch wrote its run")
    }

    // MARK: - Helpers

    /// A value one thread sets and another reads.
    private final class Box<T>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: T
        init(_ value: T) { self.value = value }
        func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
        func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    }

    /// The port the server reports for its metrics ("metrics at http://127.0.0.1:PORT/metrics").
    private func metricsPort(of server: BackgroundLTE) throws -> Int {
        let end = Date().addingTimeInterval(60)
        while Date() < end && server.process.isRunning {
            if let r = server.output.range(of: "metrics at http://127.0.0.1:"), let port = Int(server.output[r.upperBound...].prefix { $0.isNumber }) {
                return port
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTFail("the server did not report its metrics address:\n\(server.output)")
        throw CancellationError()
    }

    /// A scrape of a server started on a new run, showing round k, holds rounds.jsonl's numbers for
    /// round k (its counters: the sums over rounds 1…k). rounds.jsonl has times in milliseconds rounded
    /// to 0.01; the metrics have seconds.
    private func assertMatchesRoundsLog(_ s: [String: Double], run: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let k = Int(try XCTUnwrap(s["lte_round"], "no lte_round in \(s)", file: file, line: line))
        let lines = try rounds(run)
        XCTAssertGreaterThanOrEqual(lines.count, k, "the scrape shows round \(k) before rounds.jsonl has it", file: file, line: line)
        guard k >= 1, lines.count >= k else { return }
        let l = lines[k - 1]
        func number(_ key: String) -> Double { (l[key] as? NSNumber)?.doubleValue ?? .nan }
        func sum(_ key: String) -> Double { lines.prefix(k).map { ($0[key] as? NSNumber)?.doubleValue ?? .nan }.reduce(0, +) }
        XCTAssertEqual(number("round"), Double(k), file: file, line: line)
        XCTAssertEqual(s["lte_rounds_committed_total"], Double(k), file: file, line: line)
        XCTAssertEqual(s["lte_bytes_in_total"], sum("bytes_in"), file: file, line: line)
        XCTAssertEqual(s["lte_bytes_out_total"], sum("bytes_out"), file: file, line: line)
        XCTAssertEqual(s["lte_tokens"], number("tokens"), file: file, line: line)
        XCTAssertEqual(s["lte_round_heads_merged"], Double((l["heads"] as? [Int])?.count ?? -1), file: file, line: line)
        // Equal up to the last digit Foundation's JSON parser may get wrong.
        XCTAssertEqual(s["lte_train_loss"] ?? .nan, number("train_loss"), accuracy: 1e-12 * abs(number("train_loss")), file: file, line: line)
        XCTAssertEqual(s["lte_learning_rate"] ?? .nan, number("lr"), accuracy: 1e-12 * abs(number("lr")), file: file, line: line)
        for (metric, key) in [("lte_merge_seconds", "merge_ms"), ("lte_sync_seconds", "sync_ms"), ("lte_round_duration_seconds", "round_ms"),
                              ("lte_worker_train_seconds", "worker_train_ms"), ("lte_worker_wait_seconds", "worker_wait_ms")] {
            XCTAssertEqual((s[metric] ?? .nan) * 1000, number(key), accuracy: 0.006, "\(metric) vs \(key)", file: file, line: line)
        }
        XCTAssertNil(s.keys.first { $0.hasPrefix("lte_heads_excluded_total") }, "an honest run excluded a head", file: file, line: line)
    }
}
