import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics
import LTETestSupport
import LTETraining
import XCTest
@testable import LTEStore

final class CheckpointTests: XCTestCase {
    private let config = ModelConfig(vocabSize: 23, dim: 32, layers: 2, heads: 4, kvHeads: 2, ffnDim: 48, contextLength: 16)

    /// A model and optimizer after a few real steps, so moments and weights are all non-trivial.
    private func trained(_ c: ModelConfig, steps: Int = 3) throws -> Trainer<RandomBatches> {
        let model = try Transformer(config: c)
        model.initialize(seed: 5)
        var t = TrainingConfig()
        t.warmupIterations = 0
        let source = RandomBatches(batchSize: 2, contextLength: 8, vocabSize: c.vocabSize, seed: 9)
        let trainer = Trainer(model: model, config: t, source: source, validation: { source })
        for i in 0..<steps { _ = trainer.trainStep(iteration: i) }
        return trainer
    }

    private func bits(_ b: FloatBuffer) -> [UInt32] { b.array.map(\.bitPattern) }

    // MARK: round trip

    func testRoundTripIsBitExactForWeightsOptimizerStateAndTokenizer() throws {
        let trainer = try trained(config)
        let url = try makeTemporaryDirectory().appendingPathComponent("checkpoint")
        let tokenizer = try CharTokenizer(corpus: "abcdefg hij\n")
        var training = TrainingConfig()
        training.seed = 7
        let runConfig = RunConfig(model: config, training: training, rounds: 3)
        let state = TrainerState(step: 3, tokens: 48, seed: 7, runConfig: runConfig)
        try Checkpoint.save(model: trainer.model, optimizer: trainer.optimizer, state: state, tokenizer: tokenizer, to: url)

        let checkpoint = try Checkpoint(at: url)
        XCTAssertTrue(checkpoint.isResumable)
        XCTAssertEqual(try checkpoint.modelConfig(), config)
        let model = try Transformer(config: try checkpoint.modelConfig())
        try checkpoint.load(into: model)
        XCTAssertEqual(bits(model.params), bits(trainer.model.params))

        let optimizer = AdamW(model: model, config: TrainingConfig())
        try checkpoint.loadOptimizer(into: optimizer, for: model)
        XCTAssertEqual(optimizer.step, 3)
        XCTAssertEqual(bits(optimizer.m), bits(trainer.optimizer.m))
        XCTAssertEqual(bits(optimizer.v), bits(trainer.optimizer.v))
        XCTAssertNotEqual(optimizer.v.array.filter { $0 != 0 }.count, 0)

        let loaded = try checkpoint.trainerState()
        XCTAssertEqual([loaded.step, loaded.tokens], [3, 48])
        XCTAssertEqual(loaded.seed, 7)
        XCTAssertEqual(loaded.runConfig, runConfig)
        XCTAssertEqual(try checkpoint.tokenizer() as? CharTokenizer, tokenizer)
    }

    func testModelFileUsesHuggingFaceNamesShapesAndFormatMetadata() throws {
        let trainer = try trained(config, steps: 1)
        let url = try makeTemporaryDirectory().appendingPathComponent("ckpt")
        try Checkpoint.save(model: trainer.model, to: url)
        let file = try SafeTensorsFile(contentsOf: url.appendingPathComponent(Checkpoint.modelFile))
        XCTAssertEqual(file.metadata["format"], "pt")
        XCTAssertEqual(file.names.count, 2 + 9 * config.layers + 1)
        XCTAssertEqual(file["model.embed_tokens.weight"]?.shape, [23, 32])
        XCTAssertEqual(file["model.layers.1.self_attn.k_proj.weight"]?.shape, [16, 32], "[out, in] with GQA: 2 kv heads × 8")
        XCTAssertEqual(file["model.layers.0.mlp.down_proj.weight"]?.shape, [32, 48])
        XCTAssertEqual(file["model.norm.weight"]?.shape, [32])
        XCTAssertEqual(file["lm_head.weight"]?.shape, [23, 32])
        let up = trainer.model.layout.tensor(named: "model.layers.1.mlp.up_proj.weight")!
        XCTAssertEqual(file["model.layers.1.mlp.up_proj.weight"]?.values, Array(trainer.model.params.array[up.offset..<up.offset + up.count]))
        // A weights-only checkpoint cannot be resumed, and says so.
        let checkpoint = try Checkpoint(at: url)
        XCTAssertFalse(checkpoint.isResumable)
        assertLTEError(try checkpoint.loadOptimizer(into: trainer.optimizer, for: trainer.model), contains: "no optimizer.safetensors", "cannot be resumed")
        assertLTEError(try checkpoint.trainerState(), contains: "no trainer_state.json")
        assertLTEError(try checkpoint.tokenizer(), contains: "no tokenizer.json")
    }

    func testConfigJSONHasTheLlamaConfigFieldsTransformersNeeds() throws {
        let trainer = try trained(config, steps: 0)
        let url = try makeTemporaryDirectory().appendingPathComponent("ckpt")
        try Checkpoint.save(model: trainer.model, to: url)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url.appendingPathComponent("config.json"))) as! [String: Any]
        XCTAssertEqual(json["architectures"] as? [String], ["LlamaForCausalLM"])
        XCTAssertEqual(json["model_type"] as? String, "llama")
        XCTAssertEqual(json["hidden_act"] as? String, "silu")
        XCTAssertEqual(json["torch_dtype"] as? String, "float32")
        for key in ["tie_word_embeddings", "attention_bias", "mlp_bias"] {
            XCTAssertEqual(json[key] as? Bool, false, key)
        }
        let ints: [String: Int] = ["hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 4, "num_key_value_heads": 2,
                                   "num_hidden_layers": 2, "vocab_size": 23, "max_position_embeddings": 16, "head_dim": 8]
        for (key, value) in ints { XCTAssertEqual((json[key] as? NSNumber)?.intValue, value, key) }
        XCTAssertEqual((json["rms_norm_eps"] as? NSNumber)?.floatValue, 1e-5)
        XCTAssertEqual((json["rope_theta"] as? NSNumber)?.floatValue, 10_000)
    }

    func testSavingReplacesTheOldCheckpointAndLeavesNothingBehind() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("checkpoint")
        let first = try trained(config, steps: 1), second = try trained(config, steps: 2)
        try Checkpoint.save(model: first.model, optimizer: first.optimizer, state: TrainerState(step: 1, tokens: 16, seed: 1), to: url)
        // A crash mid-save leaves a partial sibling; the next save clears it away.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(".checkpoint.partial-crashed"), withIntermediateDirectories: false)
        try Checkpoint.save(model: second.model, to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["checkpoint"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: url.path).sorted(), ["config.json", "generation_config.json", "model.safetensors"],
                       "the new checkpoint replaces the old one whole, optimizer state included")
        let model = try Transformer(config: config)
        try Checkpoint(at: url).load(into: model)
        XCTAssertEqual(bits(model.params), bits(second.model.params))
    }

    // MARK: rejections

    func testRejectsACheckpointOfAnotherShapeNamingTheTensor() throws {
        var other = config
        other.ffnDim = 40
        let url = try makeTemporaryDirectory().appendingPathComponent("ckpt")
        try Checkpoint.save(model: try trained(other, steps: 0).model, to: url)
        let model = try Transformer(config: config)
        assertLTEError(try Checkpoint(at: url).load(into: model),
                       contains: "checkpoint \(url.path) was made for a different model: model.layers.0.mlp.gate_proj.weight has shape [40, 32], this config expects [48, 32]")
    }

    func testRejectsMissingAndExtraTensors() throws {
        var deeper = config
        deeper.layers = 3
        let dir = try makeTemporaryDirectory()
        let shallowURL = dir.appendingPathComponent("shallow"), deepURL = dir.appendingPathComponent("deep")
        try Checkpoint.save(model: try trained(config, steps: 0).model, to: shallowURL)
        try Checkpoint.save(model: try trained(deeper, steps: 0).model, to: deepURL)
        assertLTEError(try Checkpoint(at: shallowURL).load(into: try Transformer(config: deeper)),
                       contains: "was made for a different model: it has no model.layers.2.self_attn.q_proj.weight, which this config expects")
        assertLTEError(try Checkpoint(at: deepURL).load(into: try Transformer(config: config)),
                       contains: "was made for a different model: it has model.layers.2.", "which this config does not")

        // An extra tensor that is no layer at all.
        let model = try trained(config, steps: 0).model
        var file = try SafeTensorsFile(contentsOf: shallowURL.appendingPathComponent(Checkpoint.modelFile))
        file.tensors["model.rotary_emb.inv_freq"] = SafeTensor(shape: [4], values: [1, 2, 3, 4])
        try file.write(to: shallowURL.appendingPathComponent(Checkpoint.modelFile))
        assertLTEError(try Checkpoint(at: shallowURL).load(into: model), contains: "it has model.rotary_emb.inv_freq, which this config does not")
    }

    func testRejectsSameShapesButAnotherConfig() throws {
        var other = config
        other.ropeTheta = 500_000
        let url = try makeTemporaryDirectory().appendingPathComponent("ckpt")
        try Checkpoint.save(model: try trained(other, steps: 0).model, to: url)
        assertLTEError(try Checkpoint(at: url).load(into: try Transformer(config: config)),
                       contains: "was made for a different model: its config.json has rope_theta 500000.0, this config has 10000.0")
    }

    func testRejectsOptimizerStateOfAnotherModel() throws {
        var other = config
        other.vocabSize = 30
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("ckpt")
        let trainer = try trained(config)
        try Checkpoint.save(model: trainer.model, optimizer: trainer.optimizer, to: url)
        // Put another model's moments beside these weights.
        let foreign = try trained(other)
        let foreignURL = dir.appendingPathComponent("foreign")
        try Checkpoint.save(model: foreign.model, optimizer: foreign.optimizer, to: foreignURL)
        try FileManager.default.removeItem(at: url.appendingPathComponent(Checkpoint.optimizerFile))
        try FileManager.default.copyItem(at: foreignURL.appendingPathComponent(Checkpoint.optimizerFile), to: url.appendingPathComponent(Checkpoint.optimizerFile))
        assertLTEError(try Checkpoint(at: url).loadOptimizer(into: trainer.optimizer, for: trainer.model),
                       contains: "(optimizer.safetensors): m.model.embed_tokens.weight has shape [30, 32], this config expects [23, 32]")
    }

    func testRejectsMissingDirectoryAndFiles() throws {
        let dir = try makeTemporaryDirectory()
        assertLTEError(try Checkpoint(at: dir.appendingPathComponent("nope")), contains: "checkpoint \(dir.path)/nope does not exist")
        let url = dir.appendingPathComponent("ckpt")
        try Checkpoint.save(model: try trained(config, steps: 0).model, to: url)
        try FileManager.default.removeItem(at: url.appendingPathComponent("config.json"))
        assertLTEError(try Checkpoint(at: url), contains: "has no config.json")
        try Checkpoint.save(model: try trained(config, steps: 0).model, to: url)
        try FileManager.default.removeItem(at: url.appendingPathComponent("model.safetensors"))
        assertLTEError(try Checkpoint(at: url), contains: "has no model.safetensors")
    }

    func testRejectsNonFiniteWeightsAndGarbledFiles() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("ckpt")
        let model = try trained(config, steps: 0).model
        model.params[model.layout.lmHead + 5] = .nan
        try Checkpoint.save(model: model, to: url)
        assertLTEError(try Checkpoint(at: url).load(into: try Transformer(config: config)), contains: "lm_head.weight holds NaN or infinite values")

        try Data("not safetensors".utf8).write(to: url.appendingPathComponent(Checkpoint.modelFile))
        assertLTEError(try Checkpoint(at: url).load(into: try Transformer(config: config)), contains: "safetensors file", "model.safetensors")

        try Data("{\"step\": \"three\"}".utf8).write(to: url.appendingPathComponent(Checkpoint.stateFile))
        assertLTEError(try Checkpoint(at: url).trainerState(), contains: "trainer_state.json is not valid")
    }

    /// A flipped bit is still a finite float: the weights hash recorded at save time catches it.
    func testRejectsAFlippedBitByTheRecordedWeightsHash() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("ckpt")
        let model = try trained(config, steps: 1).model
        try Checkpoint.save(model: model, to: url)
        let file = url.appendingPathComponent(Checkpoint.modelFile)
        let header = try SafeTensorsFile(contentsOf: file)
        XCTAssertEqual(header.metadata[Checkpoint.weightsHashKey], WeightsHash.sha256(params: model.params.pointer, layout: model.layout).hex)
        try Checkpoint(at: url).load(into: try Transformer(config: config))   // intact: loads
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count - 3] ^= 0x01     // a mantissa bit of lm_head's last value: still finite
        try bytes.write(to: file)
        assertLTEError(try Checkpoint(at: url).load(into: try Transformer(config: config)), contains: "model.safetensors is damaged", "weights hash")
    }

    // MARK: config.json reading

    func testReadsHuggingFaceConfigsWithDefaultsAndIgnoresUnknownFields() throws {
        let json = #"""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 172,
         "num_attention_heads": 8, "num_hidden_layers": 3, "vocab_size": 100, "rope_scaling": null,
         "bos_token_id": 1, "transformers_version": "4.46.0", "tie_word_embeddings": false}
        """#
        let c = try LlamaConfigFile.decode(Data(json.utf8), source: "x.json")
        XCTAssertEqual(c, ModelConfig(vocabSize: 100, dim: 64, layers: 3, heads: 8, kvHeads: 8, ffnDim: 172,
                                      contextLength: 2048, ropeTheta: 10_000, normEps: 1e-6))
        XCTAssertEqual(try LlamaConfigFile.decode(LlamaConfigFile.encode(config), source: "round trip"), config)
    }

    func testRejectsConfigsThisDecoderCannotRun() {
        let base: [String: Any] = ["hidden_size": 64, "intermediate_size": 172, "num_attention_heads": 8, "num_hidden_layers": 3, "vocab_size": 100]
        func decode(_ extraJSON: String) throws {
            let extra = try JSONSerialization.jsonObject(with: Data("{\(extraJSON.dropFirst(2))}".utf8)) as! [String: Any]
            let merged = base.merging(extra) { _, new in new }
            _ = try LlamaConfigFile.decode(try JSONSerialization.data(withJSONObject: merged), source: "c.json")
        }
        XCTAssertNoThrow(try decode(", \"num_key_value_heads\": 2"))
        assertLTEError(try decode(#", "tie_word_embeddings": "yes""#), contains: "model config c.json", "tie_word_embeddings", "true or false")
        assertLTEError(try decode(#", "attention_bias": true"#), contains: "attention_bias")
        assertLTEError(try decode(#", "hidden_act": "gelu""#), contains: "hidden_act", "silu")
        assertLTEError(try decode(#", "model_type": "mistral""#), contains: "model_type")
        assertLTEError(try decode(#", "rope_scaling": {"type": "linear", "factor": 2.0}"#), contains: "rope_scaling")
        assertLTEError(try decode(#", "num_key_value_heads": 3"#), contains: "not a multiple of num_key_value_heads 3")
        assertLTEError(try decode(#", "head_dim": 16"#), contains: "head_dim 16")
        assertLTEError(try decode(#", "vocab_size": "many""#), contains: "\"vocab_size\" must be an integer")
        assertLTEError(try LlamaConfigFile.decode(Data(#"{"hidden_size": 64}"#.utf8), source: "c.json"), contains: "missing \"num_attention_heads\"")
        assertLTEError(try LlamaConfigFile.decode(Data("[1]".utf8), source: "c.json"), contains: "not a JSON object")
    }
}
