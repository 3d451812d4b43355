import Foundation
import LTETestSupport
import XCTest

/// The lte settings a config leaves out (RunConfig+Defaults) end to end: `lte launch` derives the
/// rank from the heads it launches, records every derived value, and ends on the in-process run's
/// bits; a resumed run keeps the recorded values.
final class DerivedDefaultsRunTests: LaunchedRunTestCase {
    /// configs/tiny.json gives lte.rank; this copy leaves rank and both learning rates out.
    private func configWithoutLTERates() throws -> String {
        let url = packageRoot.appendingPathComponent("configs/tiny.json")
        var root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var lte = try XCTUnwrap(root["lte"] as? [String: Any])
        for key in ["rank", "learning_rate", "replicated_learning_rate"] { lte[key] = nil }
        root["lte"] = lte
        let path = scratch.appendingPathComponent("derived.json")
        try JSONSerialization.data(withJSONObject: root).write(to: path)
        return path.path
    }

    private func lteSection(_ run: URL) throws -> [String: Any] {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        return try XCTUnwrap(config?["lte"] as? [String: Any])
    }

    func testLaunchDerivesFromItsHeadsRecordsTheValuesAndMatchesInProcess() throws {
        let config = try configWithoutLTERates()
        let settings = ["--set", "lte.alpha=16", "--set", "lte.merge_every=5", "--set", "training.learning_rate=3e-3"]
        let run = scratch.appendingPathComponent("launch")
        // tiny.json's lte.heads is 4; the launch has 2 × 1 heads, so its rank is tiny's widest layer over 2.
        try LTEBinary.succeed(["launch", "--workers", "2", "--heads-per-worker", "1", "--config", config, "--data", data,
                               "--run", run.path, "--rounds", "3", "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())"] + settings)
        let model = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any])?["model"] as? [String: Any])
        let dim = try XCTUnwrap(model["hidden_size"] as? Int), ffn = try XCTUnwrap(model["intermediate_size"] as? Int)
        let expectedRank = min(min(dim, ffn), ((max(dim, ffn) + 1) / 2 + 7) / 8 * 8)
        let lte = try lteSection(run)
        XCTAssertEqual(lte["heads"] as? Int, 2)
        XCTAssertEqual(lte["rank"] as? Int, expectedRank)
        let headRate = try XCTUnwrap((lte["learning_rate"] as? NSNumber)?.doubleValue)
        XCTAssertEqual(headRate, 2 * 3e-3 / (16 / Double(expectedRank)), accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap((lte["replicated_learning_rate"] as? NSNumber)?.doubleValue), 2 * 3e-3, accuracy: 1e-9, "N × the training rate")

        // The in-process run of the same config and heads derives the same values and ends on the same bits.
        let local = scratch.appendingPathComponent("local")
        let trained = try LTEBinary.succeed(["train", "--mode", "lte", "--config", config, "--data", data, "--run", local.path,
                                             "--iterations", "15", "--set", "lte.heads=2"] + settings)
        let localHash = trained.stdout.range(of: "weights ", options: .backwards).map { String(trained.stdout[$0.upperBound...].prefix(64)) }
        XCTAssertEqual(try rounds(run).last?["weights_hash"] as? String, localHash, "distributed and in-process runs differ")
        XCTAssertEqual(try lteSection(local)["rank"] as? Int, expectedRank)

        // Resumed with another training rate, the recorded (derived) head rate is kept as given.
        try LTEBinary.succeed(["train", "--mode", "lte", "--config", config, "--data", data, "--run", local.path,
                               "--resume", "--iterations", "20", "--set", "training.learning_rate=1e-3"])
        XCTAssertEqual(try XCTUnwrap((try lteSection(local)["learning_rate"] as? NSNumber)?.doubleValue), headRate, accuracy: 0)
    }

    /// A bad value is one `error:` line naming the key.
    func testBadReplicatedRateIsRefusedInOneLine() throws {
        let base = ["train", "--mode", "lte", "--config", "configs/tiny.json", "--data", data, "--run", scratch.appendingPathComponent("bad").path]
        try LTEBinary.fail(base + ["--set", "lte.replicated_learning_rate=-1"], "lte.replicated_learning_rate must be positive (got -1.0)")
        try LTEBinary.fail(base + ["--set", "lte.learning_rate=0"], "lte.learning_rate must be positive (got 0.0)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("bad/config.json").path), "nothing written")
    }
}
