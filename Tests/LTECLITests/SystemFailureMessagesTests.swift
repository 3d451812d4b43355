import Foundation
import LTETestSupport
import XCTest

/// Issue 20, item 11: when the machine refuses (a file size limit, as a full disk would) or kills a
/// process, the error line says so, with the failing operation and the system's reason.
final class SystemFailureMessagesTests: LaunchedRunTestCase {
    /// Runs `lte args…` under a file size limit of `bytes` (prlimit, with SIGXFSZ ignored so a write
    /// past the limit fails with EFBIG instead of killing the process).
    private func runLimited(fileSize bytes: Int, _ args: [String]) throws -> LTEResult {
        guard let lte = LTEBinary.url else { throw LTEBinaryMissing() }
        let quoted = ([lte.path] + args).map { "'\($0)'" }.joined(separator: " ")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "trap '' XFSZ; exec prlimit --fsize=\(bytes) \(quoted)"]
        p.currentDirectoryURL = packageRoot
        let out = scratch.appendingPathComponent("out-\(UUID().uuidString)"), err = scratch.appendingPathComponent("err-\(UUID().uuidString)")
        for url in [out, err] { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        p.waitUntilExit()
        return LTEResult(status: p.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
                         stderr: try String(contentsOf: err, encoding: .utf8))
    }

    /// The tiny model's weights (≈ 453 KB) fit under 700 KB, its optimizer moments (≈ 906 KB) do not.
    func testACheckpointThatCannotBeWrittenSaysWhy() throws {
        let run = scratch.appendingPathComponent("train")
        let r = try runLimited(fileSize: 700_000, ["train", "--config", "configs/tiny.json", "--data", data, "--run", run.path,
                                                   "--iterations", "5", "--set", "training.eval_interval=0"])
        XCTAssertNotEqual(r.status, 0, r.summary)
        XCTAssertEqual(r.stderrLines.count, 1, r.summary)
        XCTAssertTrue(r.stderr.hasPrefix("error: cannot write ") && r.stderr.contains("optimizer.safetensors: File too large"), r.summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint").path), "a half-written checkpoint was left")
    }

    /// The history's root commit holds the weights (a 455,512-byte blob): libgit2 alone would blame
    /// a leftover message or "unknown libgit2 error".
    func testAHistoryThatCannotBeWrittenSaysWhy() throws {
        if ProcessInfo.processInfo.environment["TSAN_OPTIONS"] != nil {
            // Under this limit ThreadSanitizer's own runtime faults (SIGBUS) in the sanitized lte
            // before lte's code runs; AddressSanitizer and the release build run the test.
            throw XCTSkip("the file-size limit faults ThreadSanitizer's runtime")
        }
        let run = scratch.appendingPathComponent("server")
        let r = try runLimited(fileSize: 200_000, ["server", "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())", "--config", "configs/tiny.json",
                                                   "--data", data, "--run", run.path, "--heads", "2", "--rounds", "2"])
        XCTAssertNotEqual(r.status, 0, r.summary)
        XCTAssertEqual(r.stderrLines.count, 1, r.summary)
        XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains("history.git: cannot write a 455512-byte blob: File too large"), r.summary)
    }

    /// A launched worker killed by SIGKILL is named as such, not as "exited with status 9".
    func testAKilledChildIsNamedBySignal() throws {
        let run = scratch.appendingPathComponent("launch")
        let launch = try BackgroundLTE("launch", ["launch", "--workers", "1", "--heads-per-worker", "2", "--config", "configs/tiny.json",
                                                  "--data", data, "--run", run.path, "--rounds", "100000"] + lteSettings)
        defer { launch.kill9() }
        // The worker is the process whose command line names this run's data and "--id worker-0".
        var worker: pid_t?
        let deadline = Date().addingTimeInterval(60)
        while worker == nil, Date() < deadline {
            worker = processes(withArguments: ["worker", "--id", "worker-0", data])
            if worker == nil || !launch.output.contains("round 1") { worker = nil; Thread.sleep(forTimeInterval: 0.2) }
        }
        let pid = try XCTUnwrap(worker, "the launched worker never started:\n\(launch.output)")
        kill(pid, SIGKILL)
        XCTAssertNotNil(launch.wait(seconds: 60), launch.output)
        XCTAssertTrue(launch.output.contains("worker 0 was killed by signal 9 (SIGKILL)"), launch.output)
        XCTAssertFalse(launch.output.contains("exited with status 9"), launch.output)
    }

    /// The first process whose command line holds every one of `arguments`.
    private func processes(withArguments arguments: [String]) -> pid_t? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let words = Set(raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
            if arguments.allSatisfy(words.contains) { return pid }
        }
        return nil
    }
}
