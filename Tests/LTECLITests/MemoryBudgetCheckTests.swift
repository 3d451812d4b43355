import Foundation
import LTETestSupport
import XCTest

/// Issue 20, item 7: a model the machine cannot hold is refused in one line, before anything is
/// allocated or written (it used to end in a failed allocation: a crash).
final class MemoryBudgetCheckTests: XCTestCase {
    private func dataDirectory() throws -> String { try SynthesizedData.directory(for: Self.self) }

    override class func tearDown() {
        SynthesizedData.remove(for: self)
        super.tearDown()
    }

    /// About 236 billion parameters: terabytes, far beyond any machine the tests run on.
    private func hugeConfig(in dir: URL) throws -> String {
        let url = dir.appendingPathComponent("huge.json")
        try Data("""
            {"model": {"hidden_size": 16384, "num_hidden_layers": 64, "num_attention_heads": 128, "intermediate_size": 53248,
                       "max_position_embeddings": 2048},
             "training": {"batch_size": 1, "iterations": 10}, "lte": {"heads": 2, "rank": 8}}
            """.utf8).write(to: url)
        return url.path
    }

    func testEveryCommandRefusesAModelTooBigForTheMachine() throws {
        let data = try dataDirectory()
        let dir = try makeTemporaryDirectory()
        let huge = try hugeConfig(in: dir)
        let memory = "GB of memory, the machine has"
        for mode in ["full", "lte", "lora", "fedavg"] {
            let run = dir.appendingPathComponent("train-\(mode)")
            try LTEBinary.fail(["train", "--mode", mode, "--config", huge, "--data", data, "--run", run.path],
                               "training this model (--mode \(mode), ", "needs about", memory)
            XCTAssertFalse(FileManager.default.fileExists(atPath: run.path), "a refused train left \(run.path) behind")
        }
        let server = dir.appendingPathComponent("server")
        try LTEBinary.fail(["server", "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())", "--config", huge, "--data", data, "--run", server.path,
                            "--heads", "2"], "the server of this model", "needs about", memory)
        XCTAssertFalse(FileManager.default.fileExists(atPath: server.path))
        let launch = dir.appendingPathComponent("launch")
        try LTEBinary.fail(["launch", "--workers", "2", "--heads-per-worker", "1", "--config", huge, "--data", data, "--run", launch.path],
                           "this launch (a server and 2 workers", "needs about", memory)
        XCTAssertFalse(FileManager.default.fileExists(atPath: launch.path), "a refused launch left its run directory (and secret) behind")
        try LTEBinary.fail(["bench", "step", "--config", huge, "--steps", "1"], "benchmarking this model", "needs about", memory)
        try LTEBinary.fail(["bench", "step", "--config", huge, "--mode", "lte", "--no-baseline", "--steps", "1"], "benchmarking this model", memory)
    }
}
