import Foundation
import LTEBase
import LTEModel
import LTETestSupport
import XCTest
@testable import LTETraining

/// The run config: one type read from files, overrides, the server's welcome and trainer_state.json.
final class RunConfigTests: XCTestCase {
    func decode(_ json: String, overrides: [String] = []) throws -> RunConfig {
        try RunConfig.decode(Data(json.utf8), source: "config file test.json", overrides: overrides)
    }

    let minimal = #"{"model": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96, "max_position_embeddings": 32}}"#

    func testAbsentKeysTakeTheSectionTypesDefaults() throws {
        let c = try decode(minimal)
        XCTAssertEqual(c.model, ModelConfig(vocabSize: ModelConfig.vocabularyFromData, dim: 64, layers: 2, heads: 4, ffnDim: 96, contextLength: 32))
        XCTAssertEqual(c.model.kvHeads, 4, "num_key_value_heads defaults to num_attention_heads")
        XCTAssertEqual(c.model.ropeTheta, ModelConfig.Defaults.ropeTheta)
        XCTAssertEqual(c.model.normEps, ModelConfig.Defaults.normEps)
        XCTAssertEqual(ModelConfig.Defaults.normEps, 1e-5)
        XCTAssertEqual(c.training, TrainingConfig())
        var derived = LoRAConfig()   // and the keys RunConfig+Defaults derives (RunConfigDefaultsTests)
        derived.rank = RunConfig.defaultRank(for: c.model, heads: derived.heads)
        derived.learningRate = RunConfig.headRateTimesScale * c.training.learningRate / derived.scale
        derived.replicatedLearningRate = RunConfig.replicatedRateFactor(heads: derived.heads) * c.training.learningRate
        XCTAssertEqual(c.lte, derived)
        XCTAssertNil(c.rounds)
        XCTAssertTrue(c.vocabFromData)
    }

    func testGivenValuesAndOverridesWinOverDefaults() throws {
        let c = try decode(minimal, overrides: ["model.vocab_size=65", "training.learning_rate=3e-4", "lte.merge=reset-b", "lte.heads=3", "run.rounds=7"])
        XCTAssertFalse(c.vocabFromData)
        XCTAssertEqual(c.model.vocabSize, 65)
        XCTAssertEqual(c.training.learningRate, 3e-4)
        XCTAssertEqual(c.lte.merge, .resetB)
        XCTAssertEqual(c.lte.heads, 3)
        XCTAssertEqual(c.rounds, 7)
    }

    func testEncodedReadsBackToAnEqualConfig() throws {
        var c = try decode(minimal, overrides: ["lte.learning_rate=1e-5", "training.decay_iterations=900", "lte.a_init=paper"])
        XCTAssertEqual(try RunConfig.decode(c.encoded(), source: "again"), c, "vocab_size still to come from the data")
        c.model.vocabSize = 256
        c.rounds = 4
        let again = try RunConfig.decode(c.encoded(), source: "again")
        XCTAssertEqual(again, c)
        XCTAssertEqual(again.model.normEps.bitPattern, c.model.normEps.bitPattern)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: c.encoded()) as? [String: [String: Any]])
        XCTAssertEqual(Set(json.keys), ["model", "training", "lte", "run"])
        // Every model value spelled out; rope_scaling only when there is one (configs before it hash the same).
        XCTAssertEqual(Set(json["model"]!.keys), Set(ModelConfig.keys).subtracting(["rope_scaling"]), "every model value spelled out")
    }

    func testUnknownSectionsAndKeysAreRefused() {
        assertLTEError(try decode(minimal, overrides: ["model.dropout=0.1"]), contains: "config file test.json", "unknown key \"model.dropout\"")
        assertLTEError(try decode(minimal, overrides: ["training.learning_rat=1e-3"]), contains: "unknown key \"training.learning_rat\"")
        assertLTEError(try decode(minimal, overrides: ["optimizer.beta1=0.9"]), contains: "unknown section \"optimizer\"", "lte, model, run, training")
        assertLTEError(try decode(#"{"model": 3}"#), contains: "section \"model\" must be an object")
        assertLTEError(try decode("[1, 2]"), contains: "config file test.json is not a JSON object")
        assertLTEError(try decode(minimal, overrides: ["lte"]), contains: "must look like section.key=value")
    }

    func testBadValuesAreRefusedWithTheirKey() {
        assertLTEError(try decode(minimal, overrides: ["model.hidden_size=\"wide\""]), contains: "wrong type for \"model.hidden_size\"")
        assertLTEError(try decode(minimal, overrides: ["lte.merge=sometimes"]), contains: "wrong type for \"lte.merge\"")
        assertLTEError(try decode(#"{"model": {"hidden_size": 64}}"#), contains: "missing key \"model.num_attention_heads\"")
        assertLTEError(try decode(minimal, overrides: ["model.num_attention_heads=5"]), contains: "not divisible")
        assertLTEError(try decode(minimal, overrides: ["lte.rank=0"]), contains: "lte.rank must be at least 1")
        assertLTEError(try decode(minimal, overrides: ["training.threads=0"]), contains: "training.threads must be at least 1")
        assertLTEError(try decode(minimal, overrides: ["training.batch_size=0"]), contains: "training.iterations and training.batch_size must be at least 1")
        assertLTEError(try decode(minimal, overrides: ["run.rounds=0"]), contains: "run.rounds must be at least 1")
        assertLTEError(try decode(minimal, overrides: ["lte.frozen_weights=fp4"]), contains: "lte.frozen_weights must be one of", "nf4", "\"fp4\"")
        assertLTEError(try decode(minimal, overrides: ["training.recompute=layers"]), contains: "training.recompute must be one of none, blocks")
        assertLTEError(try RunConfig.load(contentsOf: "/nonexistent/config.json"), contains: "config file /nonexistent/config.json does not exist")
    }

    /// RUN/config.json as `lte train` and `lte server` wrote it before there was a "run" section.
    func testConfigFileOfTheEarlierFormatStillLoads() throws {
        let earlier = """
            {
              "lte" : {
                "a_init" : "official",
                "alpha" : 16,
                "heads" : 4,
                "merge" : "resetless",
                "merge_every" : 5,
                "rank" : 4,
                "weight_decay" : 0,
                "wrap_lm_head" : false
              },
              "model" : {
                "hidden_size" : 64,
                "intermediate_size" : 192,
                "max_position_embeddings" : 32,
                "num_attention_heads" : 4,
                "num_hidden_layers" : 2,
                "num_key_value_heads" : 4,
                "rms_norm_eps" : 9.9999997473787516e-06,
                "rope_theta" : 10000,
                "vocab_size" : 65
              },
              "training" : {
                "batch_size" : 8,
                "beta1" : 0.89999997615814209,
                "beta2" : 0.99000000953674316,
                "checkpoint_interval" : 100,
                "epsilon" : 9.9999999392252903e-09,
                "eval_interval" : 50,
                "eval_iterations" : 10,
                "grad_clip" : 1,
                "iterations" : 15,
                "learning_rate" : 0.0030000000260770321,
                "log_interval" : 10,
                "min_learning_rate" : 0.00030000001424923539,
                "seed" : 1337,
                "threads" : 1,
                "warmup_iterations" : 20,
                "weight_decay" : 0.10000000149011612
              }
            }
            """
        let c = try decode(earlier)
        XCTAssertEqual(c.model, ModelConfig(vocabSize: 65, dim: 64, layers: 2, heads: 4, ffnDim: 192, contextLength: 32))
        XCTAssertEqual(c.training.learningRate, 0.003)
        XCTAssertEqual(c.training.iterations, 15)
        XCTAssertEqual(c.lte.heads, 4)
        XCTAssertEqual(c.lte.alpha, 16)
        XCTAssertNil(c.rounds)
    }
}
