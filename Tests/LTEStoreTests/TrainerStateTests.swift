import Foundation
import LTEBase
import LTEModel
import LTETestSupport
import LTETraining
import XCTest
@testable import LTEStore

/// trainer_state.json: the typed run config in it, and files written before it was typed.
final class TrainerStateTests: XCTestCase {
    private let model = ModelConfig(vocabSize: 23, dim: 32, layers: 2, heads: 4, kvHeads: 2, ffnDim: 48, contextLength: 16)

    /// A weights-only checkpoint whose trainer_state.json is then `stateJSON`.
    private func checkpoint(stateJSON: String) throws -> Checkpoint {
        let url = try makeTemporaryDirectory().appendingPathComponent("checkpoint")
        let transformer = try Transformer(config: model)
        try Checkpoint.save(model: transformer, to: url)
        try Data(stateJSON.utf8).write(to: url.appendingPathComponent(Checkpoint.stateFile))
        return try Checkpoint(at: url)
    }

    func testTheRunConfigIsWrittenAsRunConfigJSONAndReadBackEqual() throws {
        var training = TrainingConfig()
        training.batchSize = 3
        var lte = LoRAConfig()
        lte.merge = .resetB
        let state = TrainerState(step: 4, tokens: 96, seed: 1337, runConfig: RunConfig(model: model, training: training, lte: lte))
        let url = try makeTemporaryDirectory().appendingPathComponent("checkpoint")
        let saved = try Checkpoint.save(model: try Transformer(config: model), state: state, to: url)
        XCTAssertEqual(try saved.trainerState(), state)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url.appendingPathComponent(Checkpoint.stateFile))) as? [String: Any])
        let runConfig = try XCTUnwrap(json["run_config"] as? [String: Any])
        XCTAssertEqual((runConfig["training"] as? [String: Any])?["batch_size"] as? Int, 3)
        XCTAssertEqual((runConfig["lte"] as? [String: Any])?["merge"] as? String, "reset-b")
    }

    /// As `lte train` wrote it when the run config was kept as raw JSON.
    func testAStateFileOfTheEarlierFormatStillLoads() throws {
        let earlier = """
            {
              "run_config" : {
                "lte" : { "alpha" : 4096, "heads" : 8, "merge" : "resetless", "merge_every" : 10, "rank" : 16 },
                "model" : { "hidden_size" : 32, "intermediate_size" : 48, "max_position_embeddings" : 16, "num_attention_heads" : 4,
                            "num_hidden_layers" : 2, "num_key_value_heads" : 2, "rms_norm_eps" : 9.9999997473787516e-06,
                            "rope_theta" : 10000, "vocab_size" : 23 },
                "training" : { "batch_size" : 12, "iterations" : 2000, "learning_rate" : 0.0010000000474974513, "seed" : 1337 }
              },
              "seed" : 1337,
              "step" : 500,
              "tokens" : 1536000
            }
            """
        let state = try checkpoint(stateJSON: earlier).trainerState()
        XCTAssertEqual([state.step, state.tokens], [500, 1_536_000])
        XCTAssertEqual(state.runConfig?.model, model)
        XCTAssertEqual(state.runConfig?.training.batchSize, 12)
        XCTAssertEqual(state.runConfig?.lte.rank, 16)
    }

    func testAStateFileWithoutRunConfigLoadsAndABadOneIsRefused() throws {
        XCTAssertNil(try checkpoint(stateJSON: #"{"seed": 1, "step": 2, "tokens": 3}"#).trainerState().runConfig)
        let bad = try checkpoint(stateJSON: #"{"seed": 1, "step": 2, "tokens": 3, "run_config": {"model": {"hidden_size": 32}, "extra": {}}}"#)
        assertLTEError(try bad.trainerState(), contains: "trainer_state.json: run_config", "unknown section \"extra\"")
        let notObject = try checkpoint(stateJSON: #"{"seed": 1, "step": 2, "tokens": 3, "run_config": "big"}"#)
        assertLTEError(try notObject.trainerState(), contains: "\"run_config\" must be an object")
    }
}
