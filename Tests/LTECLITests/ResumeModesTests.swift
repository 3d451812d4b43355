import Foundation
import LTETestSupport
import XCTest

/// Issue 20, item 5: every `lte train --mode` resumes bit-identically, from the config the run
/// recorded, and says so when an override changes RUN/config.json.
final class ResumeModesTests: XCTestCase {
    static let tiny = packageRoot.appendingPathComponent("configs/tiny.json").path

    func dataDirectory() throws -> String { try SynthesizedData.directory(for: Self.self) }

    override class func tearDown() {
        SynthesizedData.remove(for: self)
        super.tearDown()
    }

    func train(_ mode: String, _ data: String, _ run: URL, _ extra: [String]) -> [String] {
        ["train", "--mode", mode, "--config", Self.tiny, "--data", data, "--run", run.path, "--threads", "1",
         "--set", "training.eval_interval=0"] + extra
    }

    /// The hash on the run's last line ("done: … | weights <sha256>").
    func weightsHash(_ stdout: String) -> String? {
        stdout.components(separatedBy: "| weights ").last.map { String($0.prefix(64)) }
    }

    /// For each mode, a run stopped at step 20 and resumed to 40 ends on the weights of a 40-step run.
    func testEveryModeResumesToTheUninterruptedWeights() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        // The schedule must not depend on --iterations; merge_every 5 divides the stop at 20.
        let schedule = ["--set", "training.decay_iterations=40", "--set", "lte.merge_every=5"]
        for mode in ["lte", "lora", "lora-merge", "fedavg"] {
            let whole = dir.appendingPathComponent("whole-\(mode)"), split = dir.appendingPathComponent("split-\(mode)")
            let a = try LTEBinary.succeed(train(mode, data, whole, ["--iterations", "40"] + schedule))
            try LTEBinary.succeed(train(mode, data, split, ["--iterations", "20"] + schedule))
            XCTAssertTrue(FileManager.default.fileExists(atPath: split.appendingPathComponent("checkpoint/replicas.safetensors").path))
            let b = try LTEBinary.succeed(train(mode, data, split, ["--iterations", "40", "--resume"] + schedule))
            XCTAssertTrue(b.stdout.contains("training \(mode), resuming at step 20"), b.stdout)
            XCTAssertNotNil(weightsHash(a.stdout), a.stdout)
            XCTAssertEqual(weightsHash(a.stdout), weightsHash(b.stdout), "\(mode): the resumed run ends on other weights")
            let wholeModel = try Data(contentsOf: whole.appendingPathComponent("checkpoint/model.safetensors"))
            let splitModel = try Data(contentsOf: split.appendingPathComponent("checkpoint/model.safetensors"))
            XCTAssertTrue(wholeModel == splitModel, "\(mode): model.safetensors differs")
        }
    }

    /// The recorded config decides: the config file's 200 iterations do not extend a 20-step run,
    /// RUN/config.json is not rewritten silently, and an explicit --iterations keeps the recorded
    /// schedule (the learning rate does not climb back up).
    func testResumeTakesTheRecordedConfigAndSaysWhatChanges() throws {
        let data = try dataDirectory()
        let run = try makeTemporaryDirectory().appendingPathComponent("run")
        try LTEBinary.succeed(train("lte", data, run, ["--iterations", "20", "--set", "training.warmup_iterations=5"]))
        let configURL = run.appendingPathComponent("config.json")
        let recorded = try Data(contentsOf: configURL)

        // tiny.json says 200 iterations and 20 warm-up steps: the run keeps its own 20 and 5.
        let refused = try LTEBinary.run(train("lte", data, run, ["--resume"]))
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("error: run \(run.path) is already at step 20 of 20"), refused.stderr)
        XCTAssertTrue(refused.stdout.contains("differs in training.iterations (200, the run has 20)"), refused.stdout)
        XCTAssertTrue(refused.stdout.contains("training.warmup_iterations (20, the run has 5)"), refused.stdout)
        XCTAssertEqual(try Data(contentsOf: configURL), recorded, "a refused resume rewrote config.json")

        let extended = try LTEBinary.succeed(train("lte", data, run, ["--resume", "--iterations", "30"]))
        XCTAssertTrue(extended.stdout.contains("keeps its recorded schedule, which decays until step 20"), extended.stdout)
        XCTAssertTrue(extended.stdout.contains("now records training.decay_iterations 20 (was none), training.iterations 30 (was 20)"), extended.stdout)
        let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let rates = try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            .map { (($0["step"] as! NSNumber).intValue, ($0["lr"] as! NSNumber).doubleValue) }
        XCTAssertEqual(rates.map(\.0), [10, 20, 30])
        XCTAssertEqual(rates[2].1, 3e-4, accuracy: 1e-9, "past the recorded decay end the rate stays at min_learning_rate")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: [String: Any]]
        XCTAssertEqual((config["training"]?["iterations"] as? NSNumber)?.intValue, 30)
        XCTAssertEqual((config["training"]?["warmup_iterations"] as? NSNumber)?.intValue, 5)

        // A checkpoint without the replicas' state (an older lte) says what to do, and no history.
        try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoint/replicas.safetensors"))
        let old = try LTEBinary.run(train("lte", data, run, ["--resume", "--iterations", "40"]))
        XCTAssertTrue(old.stderr.contains("holds the trained model only") && old.stderr.contains("--overwrite"), old.stderr)
        XCTAssertFalse(old.stderr.contains("history"), old.stderr)
    }
}

extension ResumeModesTests {
    /// Issue 20, item 6: Ctrl-C ends the step under way, saves a checkpoint there and says how to
    /// resume; resumed, the run ends on the weights of one never interrupted (here mid-round).
    func testCtrlCCheckpointsWhereItStopsAndResumesBitIdentically() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        let settings = ["--iterations", "400", "--set", "lte.heads=2", "--set", "lte.merge_every=7", "--set", "training.log_interval=5"]
        let whole = try LTEBinary.succeed(train("lte", data, dir.appendingPathComponent("whole"), settings))
        let run = dir.appendingPathComponent("stopped")
        let first = try BackgroundLTE("train", train("lte", data, run, settings))
        let metrics = run.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(60)
        while ((try? String(contentsOf: metrics, encoding: .utf8)) ?? "").isEmpty, first.process.isRunning, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(first.process.processIdentifier, SIGINT)
        XCTAssertEqual(first.wait(seconds: 60), 130, first.output)
        let said = first.output
        XCTAssertTrue(said.contains("stopped by signal at step ") && said.contains("--resume"), said)
        let step = try XCTUnwrap(said.components(separatedBy: "stopped by signal at step ").last.flatMap { Int($0.prefix { $0.isNumber }) })
        XCTAssertLessThan(step, 400, "the run ended before the signal: nothing was interrupted")
        let resumed = try LTEBinary.succeed(train("lte", data, run, ["--resume"]))
        XCTAssertTrue(resumed.stdout.contains("resuming at step \(step)"), resumed.stdout)
        XCTAssertEqual(weightsHash(resumed.stdout), weightsHash(whole.stdout), "stopped at step \(step) and resumed, the run ends on other weights")
    }
}
