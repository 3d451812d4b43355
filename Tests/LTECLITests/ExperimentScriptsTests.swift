import Foundation
import LTETestSupport
import XCTest

/// The scripts the README and the issues run by path (`experiments/bench --json FILE`, …) must stay
/// runnable that way: executable, with an interpreter line. A script once landed without its
/// executable bit, and `experiments/bench` failed with "Permission denied".
final class ExperimentScriptsTests: XCTestCase {
    func testEveryExperimentScriptRunsByPath() throws {
        let dir = packageRoot.appendingPathComponent("experiments")
        let fm = FileManager.default
        let scripts = try fm.contentsOfDirectory(atPath: dir.path).filter { name in
            var isDir: ObjCBool = false
            return !name.hasPrefix(".") && !name.contains(".") && fm.fileExists(atPath: dir.appendingPathComponent(name).path, isDirectory: &isDir) && !isDir.boolValue
        }
        for required in ["bench", "compare", "quickstart", "profile", "chaos", "hf-parity", "bpe-parity", "big-corpus", "wan", "elastic", "slurm", "sweep", "make-corpus"] {
            XCTAssertTrue(scripts.contains(required), "experiments/\(required) is missing")
        }
        for name in scripts {
            let path = dir.appendingPathComponent(name).path
            XCTAssertTrue(fm.isExecutableFile(atPath: path), "experiments/\(name) is not executable")
            let head = try String(contentsOfFile: path, encoding: .utf8).prefix(2)
            XCTAssertEqual(head, "#!", "experiments/\(name) has no interpreter line")
        }
    }

    /// experiments/make-corpus gives the same bytes every time from the same standard library (what
    /// its printed sha256 names), stops at a file boundary under --max-bytes, and refuses a bad cap
    /// in one `error:` line.
    func testMakeCorpusIsDeterministicAndCapped() throws {
        let script = packageRoot.appendingPathComponent("experiments/make-corpus").path
        let scratch = try makeTemporaryDirectory()
        func make(_ name: String, _ extra: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: script)
            p.arguments = ["--out", scratch.appendingPathComponent(name).path, "--max-bytes", "200000"] + extra
            let out = Pipe(), err = Pipe()
            p.standardOutput = out; p.standardError = err
            try p.run()
            let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, stdout, stderr)
        }
        let a = try make("a.txt"), b = try make("b.txt")
        XCTAssertEqual(a.status, 0, a.stderr)
        let bytesA = try Data(contentsOf: scratch.appendingPathComponent("a.txt")), bytesB = try Data(contentsOf: scratch.appendingPathComponent("b.txt"))
        XCTAssertEqual(bytesA, bytesB, "two runs, the same corpus")
        XCTAssertGreaterThan(bytesA.count, 0)
        XCTAssertLessThanOrEqual(bytesA.count, 200_000)
        XCTAssertTrue(String(decoding: bytesA.prefix(8), as: UTF8.self) == "# file: ", "starts with its first file's name")
        let sha = a.stdout.split(separator: "\n").first { $0.hasPrefix("sha256: ") }.map { String($0.dropFirst(8)) }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        check.arguments = [scratch.appendingPathComponent("a.txt").path]
        let pipe = Pipe()
        check.standardOutput = pipe
        try check.run()
        let line = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        XCTAssertEqual(sha, line.split(separator: " ").first.map(String.init), a.stdout)
        XCTAssertEqual(a.stdout, b.stdout.replacingOccurrences(of: "b.txt", with: "a.txt"))
        let bad = try make("c.txt", ["--max-bytes", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertEqual(bad.stderr, "error: --max-bytes must be at least 1 (got 0)\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("c.txt").path))
    }
}
