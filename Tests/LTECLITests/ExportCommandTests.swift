import Foundation
import LTETestSupport
import XCTest

/// `lte export`, `lte import` and `lte logits` through the release binary, on an `lte train`
/// checkpoint (the history side, and transformers / peft, are in experiments/hf-parity).
final class ExportCommandTests: XCTestCase {
    private func logits(_ dir: URL, _ tokens: String) throws -> [[Double]] {
        let out = try LTEBinary.succeed(["logits", "--checkpoint", dir.path, "--tokens", tokens]).stdout
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return try XCTUnwrap(json["logits"] as? [[NSNumber]]).map { $0.map(\.doubleValue) }
    }

    func testExportImportRoundTripIsByteExactAndLogitsAgree() throws {
        let dir = try makeTemporaryDirectory()
        let data = dir.appendingPathComponent("data"), run = dir.appendingPathComponent("run")
        try LTEBinary.succeed(["data", "synth", "--out", data.path, "--bytes", "50000", "--seed", "3"])
        let trained = try LTEBinary.succeed(["train", "--config", packageRoot.appendingPathComponent("configs/tiny.json").path, "--data", data.path,
                                             "--run", run.path, "--iterations", "10", "--threads", "1", "--set", "training.eval_interval=0"])
        let hash = try XCTUnwrap(trained.stdout.range(of: #"weights [0-9a-f]{64}"#, options: .regularExpression).map { String(trained.stdout[$0].dropFirst(8)) })
        let checkpoint = run.appendingPathComponent("checkpoint")
        let exported = dir.appendingPathComponent("hf"), imported = dir.appendingPathComponent("imported")

        let export = try LTEBinary.succeed(["export", "--from", checkpoint.path, "--out", exported.path])
        XCTAssertTrue(export.stdout.contains(hash), "export reports the weights hash of training:\n\(export.stdout)")
        let files = try FileManager.default.contentsOfDirectory(atPath: exported.path).sorted()
        XCTAssertEqual(files, ["README.md", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
                       "no optimizer state in an export")
        let back = try LTEBinary.succeed(["import", "--from", exported.path, "--out", imported.path])
        XCTAssertTrue(back.stdout.contains(hash), back.stdout)
        for file in ["model.safetensors", "config.json", "tokenizer.json"] {
            let original = try Data(contentsOf: checkpoint.appendingPathComponent(file))
            XCTAssertEqual(original, try Data(contentsOf: exported.appendingPathComponent(file)), file)
            XCTAssertEqual(original, try Data(contentsOf: imported.appendingPathComponent(file)), file)
        }

        let ours = try logits(checkpoint, "1,2,3,4,5")
        XCTAssertEqual(ours.count, 5)
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: exported.appendingPathComponent("config.json"))) as? [String: Any])
        XCTAssertEqual(ours.first?.count, (config["vocab_size"] as? NSNumber)?.intValue)
        XCTAssertEqual(try logits(imported, "1,2,3,4,5"), ours)
        XCTAssertNotEqual(ours[0], ours[4], "positions see different contexts")
        // Causal: a position's logits do not depend on later tokens.
        XCTAssertEqual(try logits(imported, "1,2,3,9,9")[0..<3], ours[0..<3])
    }

    func testBadInputGivesOneErrorLine() throws {
        let dir = try makeTemporaryDirectory()
        try LTEBinary.fail(["export", "--from", dir.appendingPathComponent("nothing").path, "--out", dir.appendingPathComponent("o").path], "not a directory")
        try LTEBinary.fail(["export", "--from", dir.path, "--out", dir.appendingPathComponent("o").path, "--format", "peft"], "--run")
        try LTEBinary.fail(["export", "--run", dir.path, "--out", dir.appendingPathComponent("o").path], "not a run directory")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("run/history.git"), withIntermediateDirectories: true)
        try LTEBinary.fail(["export", "--from", dir.appendingPathComponent("run").path, "--out", dir.appendingPathComponent("o").path], "is a run directory", "--run")
        try LTEBinary.fail(["import", "--from", dir.path, "--out", dir.appendingPathComponent("o").path], "model.safetensors")
        try LTEBinary.fail(["logits", "--checkpoint", dir.path, "--tokens", "1,x"], "not a token id")
        let heads = try LTEBinary.run(["export", "--from", dir.path, "--out", dir.path, "--heads"])
        XCTAssertNotEqual(heads.status, 0)
        XCTAssertTrue(heads.stderr.contains("--heads goes with --format peft"), heads.stderr)
    }
}
