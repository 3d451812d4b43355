import Foundation
import LTETestSupport
import XCTest

/// `lte data synth` → `lte train` → `lte sample`, resuming, and every way of getting it wrong, driven
/// through the release binary.
final class TrainCommandTests: XCTestCase {
    static let tiny = packageRoot.appendingPathComponent("configs/tiny.json").path

    /// One synthetic data directory for the whole class (made once: it takes a process launch).
    private func dataDirectory() throws -> String { try SynthesizedData.directory(for: Self.self) }

    override class func tearDown() {
        SynthesizedData.remove(for: self)
        super.tearDown()
    }

    private func metrics(_ run: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    private func train(_ data: String, _ run: URL, _ extra: [String]) -> [String] {
        ["train", "--config", Self.tiny, "--data", data, "--run", run.path, "--threads", "1"] + extra
    }

    func testTrainLogsMetricsWritesACheckpointAndSamples() throws {
        let data = try dataDirectory()
        let run = try makeTemporaryDirectory().appendingPathComponent("run")
        let result = try LTEBinary.succeed(train(data, run, ["--iterations", "40"]))
        XCTAssertTrue(result.stdout.hasPrefix("training full | "), result.stdout)
        XCTAssertTrue(result.stdout.contains("parameters") && result.stdout.contains("256 tokens/step"), result.stdout)
        XCTAssertTrue(result.stdout.contains("step    40/40"), result.stdout)
        XCTAssertEqual(result.stderr, "")

        let lines = try metrics(run)
        XCTAssertEqual(lines.compactMap { ($0["step"] as? NSNumber)?.intValue }, [10, 20, 30, 40])
        for line in lines {
            for key in ["step", "tokens", "train_loss", "lr"] { XCTAssertNotNil(line[key], "metrics line lacks \(key): \(line)") }
        }
        XCTAssertEqual((lines.last?["tokens"] as? NSNumber)?.intValue, 40 * 8 * 32)
        let first = (lines.first?["train_loss"] as? NSNumber)?.doubleValue ?? 0, last = (lines.last?["train_loss"] as? NSNumber)?.doubleValue ?? 99
        XCTAssertLessThan(last, first - 0.5, "training loss should fall well within 40 steps")
        let val = (lines.last?["val_loss"] as? NSNumber)?.doubleValue
        XCTAssertNotNil(val, "the last step is evaluated")
        XCTAssertLessThan(val ?? 99, log(51.0), "validation loss below a uniform guess over the vocabulary")

        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as! [String: [String: Any]]
        XCTAssertEqual((config["model"]?["vocab_size"] as? NSNumber)?.intValue, 51, "vocab_size taken from the data")
        XCTAssertEqual((config["training"]?["iterations"] as? NSNumber)?.intValue, 40, "flags are recorded in the effective config")
        let files = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoint").path).sorted()
        XCTAssertEqual(files, ["config.json", "generation_config.json", "model.safetensors", "optimizer.safetensors", "tokenizer.json",
                               "tokenizer_config.json", "trainer_state.json"])

        let checkpoint = run.appendingPathComponent("checkpoint").path
        let sample = try LTEBinary.succeed(["sample", "--checkpoint", checkpoint, "--prompt", "The ", "--tokens", "60", "--seed", "2"])
        XCTAssertTrue(sample.stdout.hasPrefix("The "), sample.stdout)
        XCTAssertGreaterThanOrEqual(sample.stdout.count, 4 + 60, "prompt + 60 characters: \(sample.stdout)")
        let again = try LTEBinary.succeed(["sample", "--checkpoint", checkpoint, "--prompt", "The ", "--tokens", "60", "--seed", "2"])
        XCTAssertEqual(again.stdout, sample.stdout, "same seed, same text")
        // Longer than the context of 32: the window slides.
        let long = try LTEBinary.succeed(["sample", "--checkpoint", checkpoint, "--prompt", "\n", "--tokens", "80", "--temperature", "0"])
        XCTAssertGreaterThanOrEqual(long.stdout.count, 81)

        // The run directory is taken: refuse to overwrite it without --resume.
        try LTEBinary.fail(train(data, run, ["--iterations", "40"]), "already holds a run", "--resume")
    }

    func testResumedRunEndsBitIdenticalToAnUninterruptedOne() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        let whole = dir.appendingPathComponent("whole"), split = dir.appendingPathComponent("split")
        // The schedule must not depend on --iterations for the two runs to be comparable.
        let schedule = ["--set", "training.decay_iterations=60", "--set", "training.eval_interval=20"]
        try LTEBinary.succeed(train(data, whole, ["--iterations", "60"] + schedule))
        try LTEBinary.succeed(train(data, split, ["--iterations", "30"] + schedule))
        // As if the first run had logged step 40 and died before its next checkpoint: the resumed
        // run must drop that line rather than log step 40 twice.
        let metricsURL = split.appendingPathComponent("metrics.jsonl")
        let handle = try FileHandle(forWritingTo: metricsURL)
        handle.seekToEndOfFile()
        handle.write(Data("{\"step\":40,\"tokens\":10240,\"train_loss\":9.9}\n".utf8))
        try handle.close()

        let resumed = try LTEBinary.succeed(train(data, split, ["--iterations", "60", "--resume"] + schedule))
        XCTAssertTrue(resumed.stdout.contains("resuming at step 30"), resumed.stdout)
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let a = try Data(contentsOf: whole.appendingPathComponent("checkpoint/\(file)"))
            let b = try Data(contentsOf: split.appendingPathComponent("checkpoint/\(file)"))
            XCTAssertTrue(a == b, "\(file) differs between the uninterrupted and the resumed run")
        }
        let steps = try metrics(split).compactMap { ($0["step"] as? NSNumber)?.intValue }
        XCTAssertEqual(steps, [10, 20, 30, 40, 50, 60])
        let wholeLoss = try metrics(whole).map { ($0["train_loss"] as? NSNumber)?.doubleValue ?? -1 }
        let splitLoss = try metrics(split).map { ($0["train_loss"] as? NSNumber)?.doubleValue ?? -1 }
        XCTAssertEqual(wholeLoss, splitLoss, "the same batches give the same losses")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: split.appendingPathComponent("checkpoint/trainer_state.json"))) as! [String: Any]
        XCTAssertEqual((state["step"] as? NSNumber)?.intValue, 60)
        XCTAssertEqual((state["tokens"] as? NSNumber)?.intValue, 60 * 8 * 32)

        // Nothing left to do at the end; another seed would replay other batches.
        try LTEBinary.fail(train(data, split, ["--iterations", "60", "--resume"] + schedule), "already at step 60 of 60")
        try LTEBinary.fail(train(data, split, ["--iterations", "80", "--resume", "--seed", "9"] + schedule), "made with seed 1337", "--seed 1337")
    }

    func testBadInputFailsWithOneErrorLine() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        func run(_ name: String) -> URL { dir.appendingPathComponent(name) }

        try LTEBinary.fail(train(dir.appendingPathComponent("missing-data").path, run("a"), []), "missing-data does not exist", "lte data prepare")

        let garbled = dir.appendingPathComponent("garbled")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: data), to: garbled)
        try Data("this is not a token shard at all".utf8).write(to: garbled.appendingPathComponent("train.bin"))
        try LTEBinary.fail(train(garbled.path, run("b"), []), "train.bin", "bad magic")

        try LTEBinary.fail(train(data, run("c"), ["--set", "training.learning_rat=1e-3"]), "unknown key \"training.learning_rat\"")
        let config = dir.appendingPathComponent("typo.json")
        try Data(#"{"model": {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 16, "dropout": 0.1}}"#.utf8).write(to: config)
        try LTEBinary.fail(["train", "--config", config.path, "--data", data, "--run", run("d").path], "typo.json", "unknown key \"model.dropout\"")
        try LTEBinary.fail(train(data, run("e"), ["--set", "model.num_attention_heads=3"]), "hidden_size 64 is not divisible by num_attention_heads 3")
        try LTEBinary.fail(train(data, run("f"), ["--set", "model.vocab_size=20"]), "vocab_size 20 is smaller than the vocabulary of 51")
        try LTEBinary.fail(train(data, run("g"), ["--mode", "lte", "--set", "lte.merge_every=0"]), "lte.merge_every must be at least 1")
        try LTEBinary.fail(train(data, run("g2"), ["--mode", "lte", "--set", "lte.rank=100"]), "lte.rank 100 exceeds")
        try LTEBinary.fail(train(data, run("h"), ["--resume"]), "no checkpoint to resume from")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run("h").path), "a failed start leaves no run directory behind")

        // A checkpoint made with one config, resumed with another.
        try LTEBinary.succeed(train(data, run("i"), ["--iterations", "10"]))
        try LTEBinary.fail(train(data, run("i"), ["--iterations", "20", "--resume", "--set", "model.intermediate_size=128"]),
                           "checkpoint \(run("i").path)/checkpoint was made for a different model: model.layers.0.mlp.gate_proj.weight has shape [192, 64], this config expects [128, 64]")
        try LTEBinary.fail(train(data, run("i"), ["--iterations", "20", "--resume", "--set", "model.rope_theta=500000"]),
                           "its config.json has rope_theta 10000.0, this config has 500000.0")

        try LTEBinary.fail(["sample", "--checkpoint", run("nowhere").path, "--prompt", "a"], "nowhere does not exist")
        try LTEBinary.fail(["sample", "--checkpoint", run("i").appendingPathComponent("checkpoint").path, "--prompt", "€uro"],
                           "--prompt", "not in the char tokenizer's vocabulary")
    }
}
