import XCTest
@testable import LTENumerics

final class BLASEnvironmentTests: XCTestCase {
    /// What the user set is kept; what is missing is asked for, so `lte` re-executes at most once.
    func testOnlyMissingVariablesAreAdded() {
        XCTAssertEqual(BLASEnvironment.missing(in: [:])["OPENBLAS_THREAD_TIMEOUT"], "10")
        XCTAssertNil(BLASEnvironment.missing(in: ["OPENBLAS_THREAD_TIMEOUT": "28"])["OPENBLAS_THREAD_TIMEOUT"])
        XCTAssertNil(BLASEnvironment.missing(in: ["GOTO_THREAD_TIMEOUT": "28"])["OPENBLAS_THREAD_TIMEOUT"])
        XCTAssertTrue(BLASEnvironment.missing(in: ["OPENBLAS_THREAD_TIMEOUT": "10", "OPENBLAS_CORETYPE": "Haswell"]).isEmpty)
        // SkylakeX kernels are only asked for on a CPU with the AVX-512 subsets they use.
        if BLASEnvironment.missing(in: ["OPENBLAS_THREAD_TIMEOUT": "10"])["OPENBLAS_CORETYPE"] != nil {
            XCTAssertTrue(BLASEnvironment.cpuFlags().contains("avx512f"))
        }
    }

    /// The re-executed process has what it asked for (`bench step` reports what it ran with).
    func testLTERunsWithTheThreadTimeoutSet() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let lte = root.appendingPathComponent(".build/release/lte")
        guard FileManager.default.isExecutableFile(atPath: lte.path) else { throw XCTSkip("no release lte binary") }
        let p = Process()
        p.executableURL = lte
        p.arguments = ["bench", "step", "--config", root.appendingPathComponent("configs/tiny.json").path, "--steps", "1", "--warmup", "0", "--json"]
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_THREAD_TIMEOUT"] = nil
        env["GOTO_THREAD_TIMEOUT"] = nil
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: out) as? [String: Any])
        XCTAssertEqual(json["blas_thread_timeout"] as? String, "10")
        XCTAssertNotNil(json["blas_kernels"] as? String)
    }
}
