import Foundation
import LTEBase
import LTECluster
import LTEData
import LTENet
import LTETestSupport
import LTETraining
import XCTest

/// Issue 20, item 7, on a worker: the run's model comes in the server's welcome, and one the
/// worker's machine cannot hold is refused in one line before its weights are allocated.
final class WorkerMemoryCheckTests: XCTestCase {
    func testAWelcomeForAModelTooBigForTheMachineIsRefusedBeforeAllocating() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("train.bin")
        try TokenShard.write((0..<4096).map { Int32($0 % 50) }, vocabSize: 50, to: url)
        let shard = try TokenShard(contentsOf: url, vocabSize: 50)
        // About 236 billion parameters: terabytes.
        let config = Data("""
            {"model": {"vocab_size": 50, "hidden_size": 16384, "num_hidden_layers": 64, "num_attention_heads": 128,
                       "intermediate_size": 53248, "max_position_embeddings": 2048},
             "training": {"batch_size": 1}, "lte": {"heads": 2, "rank": 8}}
            """.utf8)
        let worker = WorkerCore(id: "w", heads: [0, 1], train: shard, vocabSize: 50, fingerprint: nil)
        var asked = 0
        assertLTEError(try worker.join(over: { _ in
            asked += 1
            return .welcome(WelcomeMessage(runId: "r", round: 0, baseCommit: "", configJSON: config, tensors: [],
                                           headIds: [0, 1], optimizerSteps: [0, 0]))
        }), contains: "worker w (a model of", "needs about", "GB of memory, the machine has")
        XCTAssertEqual(asked, 1)
        XCTAssertNil(worker.main, "the worker holds no weights after refusing")
    }
}
