import Foundation
import XCTest

/// `lte bench step --versus`: the same mode with one setting changed, timed in the same process step by
/// step, and the ratio reported; the budget counts what the process held before the model.
final class BenchStepVersusTests: XCTestCase {
    private func benchJSON(_ extra: [String]) throws -> [String: Any] {
        let r = try LTEBinary.succeed(["bench", "step", "--config", "configs/tiny.json", "--steps", "2", "--warmup", "0", "--json"] + extra)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").last, r.summary)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], r.summary)
    }

    func testVersusReportsBothVariantsAndTheirRatio() throws {
        let j = try benchJSON(["--mode", "lte", "--heads", "1", "--no-baseline", "--set", "lte.frozen_weights=nf4", "--versus", "lte.frozen_weights=f32"])
        XCTAssertEqual(j["frozen"] as? String, "nf4", "the row is the --set variant")
        XCTAssertEqual(j["versus_setting"] as? String, "lte.frozen_weights=f32")
        let a = try XCTUnwrap(j["tokens_per_s"] as? Double), b = try XCTUnwrap(j["versus_tokens_per_s"] as? Double)
        XCTAssertGreaterThan(b, 0)
        XCTAssertGreaterThan(try XCTUnwrap(j["versus_step_cpu_ms"] as? Double), 0)
        // Both rounded to 0.1 tokens/s before the ratio here, to 0.001 there.
        XCTAssertEqual(try XCTUnwrap(j["tokens_per_s_vs_versus"] as? Double), a / b, accuracy: 0.002 + 0.2 / b)
        XCTAssertNil(j["speedup_vs_full"], "--no-baseline: no full-rank step")
    }

    /// The budget is the model's lines plus what was resident before the model was built (measured).
    func testBudgetCountsTheRuntimeBeforeTheModel() throws {
        let j = try benchJSON(["--mode", "lte", "--heads", "1", "--no-baseline"])
        let runtime = try XCTUnwrap(j["runtime_mb"] as? Double), before = try XCTUnwrap(j["baseline_rss_mb"] as? Double)
        XCTAssertEqual(runtime, before, accuracy: 0.1)
        XCTAssertGreaterThan(runtime, 5, "a Swift process with OpenBLAS holds more than 5 MB before any model")
        let budget = try XCTUnwrap(j["budget_mb"] as? Double), state = try XCTUnwrap(j["state_mb"] as? Double)
        XCTAssertGreaterThan(budget, runtime + state, "budget = runtime + state + activations")
    }

    func testABadVersusSettingIsOneErrorLine() throws {
        try LTEBinary.fail(["bench", "step", "--config", "configs/tiny.json", "--mode", "lte", "--versus", "lte.frozen_weights=fp3"],
                           "--versus lte.frozen_weights=fp3", "lte.frozen_weights must be one of f32, int8, nf4")
    }
}
