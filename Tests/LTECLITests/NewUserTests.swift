import Foundation
import LTETestSupport
import XCTest

/// Issue 20: what a new user ran into, each through the release binary as they ran it.
final class NewUserTests: XCTestCase {
    static let tiny = packageRoot.appendingPathComponent("configs/tiny.json").path

    /// One synthetic data directory for the whole class (made once: it takes a process launch).
    private func dataDirectory() throws -> String { try SynthesizedData.directory(for: Self.self) }

    override class func tearDown() {
        SynthesizedData.remove(for: self)
        super.tearDown()
    }

    private func train(_ data: String, _ run: URL, _ extra: [String]) -> [String] {
        ["train", "--config", Self.tiny, "--data", data, "--run", run.path, "--threads", "1"] + extra
    }

    private func listing(_ url: URL) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted() }

    /// Item 1: --out never deletes what lte did not write, a run, a file, or anything above it.
    func testOutRefusesFilesForeignDirectoriesAndRuns() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        let run = dir.appendingPathComponent("run")
        try LTEBinary.succeed(train(data, run, ["--iterations", "10", "--set", "training.eval_interval=0"]))
        let checkpoint = run.appendingPathComponent("checkpoint").path
        let before = listing(run)

        // A training run, as --out of import and export.
        try LTEBinary.fail(["import", "--from", checkpoint, "--out", run.path], "is a run directory", "--force")
        try LTEBinary.fail(["export", "--from", checkpoint, "--out", run.path], "is a run directory")
        XCTAssertEqual(listing(run), before)
        // A directory holding a run.
        try LTEBinary.fail(["export", "--from", checkpoint, "--out", dir.path], "holds the run directory")
        // sub/.. is its parent, and the parent holds a run.
        try LTEBinary.fail(["export", "--from", checkpoint, "--out", run.appendingPathComponent("checkpoint").path + "/.."], "is a run directory")
        // A directory of someone else's files.
        let mine = dir.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        try Data("notes".utf8).write(to: mine.appendingPathComponent("notes.txt"))
        try LTEBinary.fail(["export", "--from", checkpoint, "--out", mine.path], "did not write", "notes.txt", "--force")
        try LTEBinary.fail(["data", "synth", "--out", mine.path, "--bytes", "1000"], "did not write")
        XCTAssertEqual(listing(mine), ["notes.txt"])
        // A regular file.
        let file = dir.appendingPathComponent("config.json")
        try Data("{}".utf8).write(to: file)
        try LTEBinary.fail(["import", "--from", checkpoint, "--out", file.path], "is an existing file")
        try LTEBinary.fail(["export", "--from", checkpoint, "--format", "gguf", "--out", file.path], "is an existing file")
        XCTAssertEqual(try Data(contentsOf: file), Data("{}".utf8))

        // What lte wrote may be written again; --force replaces anything but the working directory.
        let exported = dir.appendingPathComponent("hf")
        try LTEBinary.succeed(["export", "--from", checkpoint, "--out", exported.path])
        try LTEBinary.succeed(["export", "--from", checkpoint, "--out", exported.path])
        try LTEBinary.succeed(["import", "--from", exported.path, "--out", exported.path])
        let gguf = dir.appendingPathComponent("m.gguf").path
        try LTEBinary.succeed(["export", "--from", checkpoint, "--format", "gguf", "--out", gguf])
        try LTEBinary.succeed(["export", "--from", checkpoint, "--format", "gguf", "--out", gguf])
        try LTEBinary.succeed(["export", "--from", checkpoint, "--out", mine.path, "--force"])
        XCTAssertFalse(listing(mine).contains("notes.txt"))
        try LTEBinary.fail(["export", "--from", checkpoint, "--out", "."], "current directory")
    }

    /// Item 2: `lte launch` found on PATH, started from another directory.
    func testLaunchWorksWhenLTEIsFoundOnPATH() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        let binary = try XCTUnwrap(LTEBinary.url)
        let result = try LTEBinary.run(["launch", "--workers", "1", "--heads-per-worker", "1", "--config", Self.tiny, "--data", data,
                                        "--run", dir.appendingPathComponent("run").path, "--rounds", "1"],
                                       directory: dir, executable: "lte",
                                       // The test's own environment (sanitizer options included) with only PATH changed.
                                       environment: ProcessInfo.processInfo.environment.merging(
                                           ["PATH": binary.deletingLastPathComponent().path + ":/usr/bin:/bin"]) { $1 })
        XCTAssertEqual(result.status, 0, result.summary)
        XCTAssertTrue(result.stdout.contains("launch: done"), result.summary)
    }

    /// Item 7: a corpus too large for the disk is refused in one line, before anything is written.
    func testHugeSyntheticCorpusIsRefusedWithOneLine() throws {
        let dir = try makeTemporaryDirectory()
        try LTEBinary.fail(["data", "synth", "--out", dir.appendingPathComponent("d").path, "--bytes", "30000000000000"], "needs about", "GB are free")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("d").path))
    }

    /// Items 10 and 11: values no run can take, and messages that say what is wrong and where.
    func testConfigValuesAndMessages() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        func run(_ name: String) -> URL { dir.appendingPathComponent(name) }
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.beta1=2"]), "--set training.beta1=2", "training.beta1 must be in [0, 1)")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.weight_decay=-1"]), "training.weight_decay must be zero or positive")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.grad_clip=-1"]), "training.grad_clip must be zero or positive")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.eval_interval=-5"]), "training.eval_interval must be zero or positive")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.eval_iterations=0"]), "training.eval_iterations must be at least 1")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.min_learning_rate=0.1"]), "min_learning_rate 0.1 is above training.learning_rate")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.epsilon=0"]), "training.epsilon must be positive")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.iterations=12.5"]), "--set training.iterations=12.5", "\"training.iterations\"", "12.5")
        try LTEBinary.fail(train(data, run("a"), ["--set", "training.seed=-1"]), "\"training.seed\"", "-1")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run("a").path))

        let duplicate = dir.appendingPathComponent("duplicate.json")
        try Data((#"{"model": {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 16},"#
                 + #" "training": {"learning_rate": 0.001, "iterations": 10, "learning_rate": 0.5}}"#).utf8).write(to: duplicate)
        try LTEBinary.fail(["train", "--config", duplicate.path, "--data", data, "--run", run("b").path],
                           "duplicate.json", "\"training.learning_rate\" appears twice", "line 1, column")
        let truncated = dir.appendingPathComponent("truncated.json")
        let tiny = try Data(contentsOf: URL(fileURLWithPath: Self.tiny))
        try tiny.prefix(200).write(to: truncated)
        try LTEBinary.fail(["train", "--config", truncated.path, "--data", data, "--run", run("b").path], "truncated.json", "end of the file", "line ")
        let nullSection = dir.appendingPathComponent("null-section.json")
        try Data(#"{"model": {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 16}, "training": null}"#.utf8).write(to: nullSection)
        try LTEBinary.fail(["train", "--config", nullSection.path, "--data", data, "--run", run("b").path], "training is null")
        let nullValue = dir.appendingPathComponent("null.json")
        try Data(#"{"model": {"hidden_size": null, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 16}}"#.utf8).write(to: nullValue)
        try LTEBinary.fail(["train", "--config", nullValue.path, "--data", data, "--run", run("b").path], "null.json", "model.hidden_size is null")

        try LTEBinary.fail(["log", "--run", dir.path, "--limit", "0"], "--limit")
        try LTEBinary.fail(["log", "--run", dir.path, "--limit=-1"], "--limit")
        try LTEBinary.fail(["server", "--listen", "tcp://127.0.0.1:99999", "--run", run("s").path, "--config", Self.tiny, "--data", data],
                           "port 99999")
        try LTEBinary.fail(["server", "--listen", "tcp://127.0.0.1:5555", "--run", run("s").path, "--config", Self.tiny, "--data", data,
                            "--concurrency", "1"], "--concurrency")
        try LTEBinary.fail(["server", "--listen", "tcp://127.0.0.1:5555", "--run", run("s").path, "--config", Self.tiny, "--data", data,
                            "--heads", "2", "--quorum", "3"], "--quorum 3", "2 heads")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run("s").path))
        let file = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        try LTEBinary.fail(train(file.path, run("c"), []), "is a file, not a data directory")
    }
}

extension NewUserTests {
    /// Item 3: a refused server start leaves the run as it was (config.json, history), so log,
    /// replay and export of it still work.
    func testRefusedServerLeavesTheRunUntouched() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        let run = dir.appendingPathComponent("run")
        try LTEBinary.succeed(["launch", "--workers", "1", "--heads-per-worker", "2", "--config", Self.tiny, "--data", data,
                               "--run", run.path, "--rounds", "2"])
        let config = try Data(contentsOf: run.appendingPathComponent("config.json"))
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        // Another model, and the same model with data from another tokenizer.
        try LTEBinary.fail(["server", "--listen", address, "--run", run.path, "--config", Self.tiny, "--data", data, "--heads", "2",
                            "--set", "model.intermediate_size=128"], "different model config", "intermediate_size")
        let other = dir.appendingPathComponent("other")
        let text = String(repeating: "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA .,;:!?'\n", count: 2000)
        try Data(text.utf8).write(to: dir.appendingPathComponent("other.txt"))
        try LTEBinary.succeed(["data", "prepare", "--input", dir.appendingPathComponent("other.txt").path, "--tokenizer", "char", "--out", other.path])
        try LTEBinary.fail(["server", "--listen", address, "--run", run.path, "--config", Self.tiny, "--data", other.path, "--heads", "2"],
                           "different model config", "vocab_size")
        try LTEBinary.fail(["server", "--listen", address, "--run", run.path, "--config", Self.tiny, "--data", data, "--heads", "2",
                            "--secret-file", dir.appendingPathComponent("no-secret").path], "no-secret")
        // Item 10: a run already past the rounds asked for says so (it used to stop at once, silently).
        try LTEBinary.fail(["server", "--listen", address, "--run", run.path, "--config", Self.tiny, "--data", data, "--heads", "2",
                            "--rounds", "1"], "already at round 2", "--rounds above 2")
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("config.json")), config, "a refused server rewrote config.json")
        try LTEBinary.succeed(["log", "--run", run.path])
        try LTEBinary.succeed(["fsck", "--run", run.path])
    }

    /// Item 4: resuming on data from another tokenizer with the same vocabulary size is refused.
    /// Item 6: a run stopped before its first checkpoint can be started again with --overwrite.
    func testResumeChecksTheTokenizerAndOverwriteRestartsARun() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        let run = dir.appendingPathComponent("run")
        try LTEBinary.succeed(train(data, run, ["--iterations", "10", "--set", "training.eval_interval=0"]))
        // One character swapped for one the corpus lacks: the same vocabulary size, other ids.
        let corpus = try String(contentsOf: URL(fileURLWithPath: data).appendingPathComponent("corpus.txt"), encoding: .utf8)
        XCTAssertFalse(corpus.contains("~"))
        let shuffled = dir.appendingPathComponent("shuffled.txt")
        try Data(corpus.replacingOccurrences(of: "e", with: "~").utf8).write(to: shuffled)
        let other = dir.appendingPathComponent("other")
        try LTEBinary.succeed(["data", "prepare", "--input", shuffled.path, "--tokenizer", "char", "--out", other.path])
        try LTEBinary.fail(train(other.path, run, ["--iterations", "20", "--resume", "--set", "training.eval_interval=0"]),
                           "another tokenizer")

        // Metrics but no checkpoint (stopped early): --resume cannot, --overwrite can.
        try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoint"))
        try LTEBinary.fail(train(data, run, ["--iterations", "10"]), "before its first checkpoint", "--overwrite")
        try LTEBinary.fail(train(data, run, ["--iterations", "10", "--resume"]), "no checkpoint", "--overwrite")
        try LTEBinary.succeed(train(data, run, ["--iterations", "10", "--overwrite", "--set", "training.eval_interval=0"]))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint/model.safetensors").path))
    }
}
