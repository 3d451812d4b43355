import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// Hugging Face model directories (export, import) and PEFT adapters of a round's delta, on a real
/// history written by `SimulatedServer`. The Python side (transformers, peft) is experiments/hf-parity.
final class HuggingFaceExportTests: XCTestCase {
    private func bytes(_ b: FloatBuffer) -> Data { Data(buffer: b.buffer) }

    func testExportThenImportIsBitExactAndKeepsTheWeightsHash() throws {
        let dir = try makeTemporaryDirectory()
        let server = try SimulatedServer.standardRun(at: dir.appendingPathComponent("history.git"))
        let (weights, result) = try server.history.replay(to: "5")
        let exported = dir.appendingPathComponent("hf"), imported = dir.appendingPathComponent("imported")
        try HuggingFaceModel.write(weights: weights, config: SimulatedServer.model, tokenizer: try server.history.tokenizerData(at: "5"), to: exported)

        let back = try HuggingFaceModel.read(from: exported)
        XCTAssertEqual(back.config, SimulatedServer.model)
        XCTAssertEqual(bytes(back.weights), bytes(weights), "the round trip must keep every bit")
        XCTAssertEqual(WeightsHash.sha256(params: back.weights.pointer, layout: ParameterLayout(back.config)), result.weightsHash)
        // The history holds the older {"type":"byte"}; the export ships it as a Hugging Face file.
        XCTAssertTrue(try Tokenizers.decode(XCTUnwrap(back.tokenizer), source: exported) is ByteTokenizer)
        XCTAssertNotNil((try JSONSerialization.jsonObject(with: XCTUnwrap(back.tokenizer)) as? [String: Any])?["model"])

        try HuggingFaceModel.write(weights: back.weights, config: back.config, tokenizer: back.tokenizer, to: imported)
        for file in ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            XCTAssertEqual(try Data(contentsOf: exported.appendingPathComponent(file)), try Data(contentsOf: imported.appendingPathComponent(file)), file)
        }
        // The same bytes a checkpoint of these weights holds: one format, two entry points.
        let model = try Transformer(config: SimulatedServer.model, trainable: { _ in false })
        model.params.copy(from: weights)
        let checkpoint = try Checkpoint.save(model: model, to: dir.appendingPathComponent("checkpoint"))
        XCTAssertEqual(try Data(contentsOf: checkpoint.url.appendingPathComponent("model.safetensors")),
                       try Data(contentsOf: exported.appendingPathComponent("model.safetensors")))

        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: exported.appendingPathComponent("config.json"))) as! [String: Any]
        let c = SimulatedServer.model
        let expected: [String: Int] = ["hidden_size": c.dim, "intermediate_size": c.ffnDim, "num_attention_heads": c.heads,
                                       "num_key_value_heads": c.kvHeads, "num_hidden_layers": c.layers, "vocab_size": c.vocabSize,
                                       "max_position_embeddings": c.contextLength]
        for (key, value) in expected { XCTAssertEqual((config[key] as? NSNumber)?.intValue, value, key) }
        XCTAssertEqual((config["rms_norm_eps"] as? NSNumber)?.floatValue, c.normEps)
        XCTAssertEqual((config["rope_theta"] as? NSNumber)?.floatValue, c.ropeTheta)
        XCTAssertEqual(config["tie_word_embeddings"] as? Bool, false)
        XCTAssertEqual(config["architectures"] as? [String], ["LlamaForCausalLM"])
    }

    /// Sets `tie_word_embeddings` true in a model directory's config.json.
    static func tie(_ url: URL) throws {
        let config = url.appendingPathComponent("config.json")
        let text = try String(contentsOf: config, encoding: .utf8)
        XCTAssertTrue(text.contains("\"tie_word_embeddings\": false"))
        try text.replacingOccurrences(of: "\"tie_word_embeddings\": false", with: "\"tie_word_embeddings\": true")
            .write(to: config, atomically: true, encoding: .utf8)
    }

    /// A tied model as save_pretrained writes it (no lm_head tensor) is read untied, lm_head a copy
    /// of the embedding — so its logits are the tied model's — and every other tensor as stored.
    func testTiedEmbeddingsImportAsACopyOfTheEmbedding() throws {
        let dir = try makeTemporaryDirectory()
        let c = SimulatedServer.model
        let layout = ParameterLayout(c)
        let weights = FloatBuffer(count: layout.count)
        var rng = SeededGenerator(seed: 7)
        for i in 0..<layout.count { weights.pointer[i] = Float(Double(rng.next() % 2001) / 1000 - 1) }
        let tied = dir.appendingPathComponent("tied")
        try HuggingFaceModel.write(weights: weights, config: c, tokenizer: nil, to: tied)
        try Self.tie(tied)
        let kept = TensorSlot.weights(layout).filter { $0.name != "lm_head.weight" }
        try TensorSlot.encode(kept, from: weights.pointer).write(to: tied.appendingPathComponent("model.safetensors"))

        let back = try HuggingFaceModel.read(from: tied)
        XCTAssertTrue(back.untiedLMHead)
        let embed = UnsafeBufferPointer(start: back.weights.pointer + layout.embed, count: c.vocabSize * c.dim)
        let head = UnsafeBufferPointer(start: back.weights.pointer + layout.lmHead, count: c.vocabSize * c.dim)
        XCTAssertTrue(head.elementsEqual(embed, by: { $0.bitPattern == $1.bitPattern }))
        XCTAssertFalse(head.elementsEqual(UnsafeBufferPointer(start: weights.pointer + layout.lmHead, count: head.count)))
        for slot in kept {
            XCTAssertTrue(UnsafeBufferPointer(start: back.weights.pointer + slot.offset, count: slot.count)
                .elementsEqual(UnsafeBufferPointer(start: weights.pointer + slot.offset, count: slot.count)), slot.name)
        }
        // A tied file that also stores lm_head (equal to the embedding) reads the same.
        try TensorSlot.encode(TensorSlot.weights(layout), from: back.weights.pointer).write(to: tied.appendingPathComponent("model.safetensors"))
        let again = try HuggingFaceModel.read(from: tied)
        withExtendedLifetime(again) {
            XCTAssertTrue(UnsafeBufferPointer(start: again.weights.pointer, count: layout.count)
                .elementsEqual(UnsafeBufferPointer(start: back.weights.pointer, count: layout.count)))
        }
    }

    func testImportRejectsWhatThisDecoderCannotRun() throws {
        let dir = try makeTemporaryDirectory()
        let c = SimulatedServer.model
        let good = dir.appendingPathComponent("good")
        let weights = FloatBuffer(count: ParameterLayout(c).count)
        try HuggingFaceModel.write(weights: weights, config: c, tokenizer: nil, to: good)
        XCTAssertNil(try HuggingFaceModel.read(from: good).tokenizer)

        func variant(_ name: String, _ change: (URL) throws -> Void) throws -> URL {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.copyItem(at: good, to: url)
            try change(url)
            return url
        }
        // f16 weights (same header length as F32, so only the dtype differs).
        let f16 = try variant("f16") { url in
            let bytes = try SafeTensorsFile.encode([.init(name: "model.embed_tokens.weight", shape: [2], data: UnsafeBufferPointer(start: weights.pointer, count: 2))])
            let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\"F32\"", with: "\"F16\"")
            try Data(text.utf8).write(to: url.appendingPathComponent("model.safetensors"))
        }
        assertLTEError(try HuggingFaceModel.read(from: f16), contains: "F16", "torch.float32")
        let tied = try variant("tied-but-different") { url in
            try Self.tie(url)
            let layout = ParameterLayout(c)
            let distinct = FloatBuffer(count: layout.count)
            distinct.pointer[layout.lmHead] = 1   // lm_head no longer equals the (zero) embedding
            try TensorSlot.encode(TensorSlot.weights(layout), from: distinct.pointer).write(to: url.appendingPathComponent("model.safetensors"))
        }
        assertLTEError(try HuggingFaceModel.read(from: tied), contains: "tie_word_embeddings", "differs")
        let sharded = try variant("sharded") { url in
            try FileManager.default.moveItem(at: url.appendingPathComponent("model.safetensors"), to: url.appendingPathComponent("model-00001-of-00002.safetensors"))
            try Data("{}".utf8).write(to: url.appendingPathComponent("model.safetensors.index.json"))
        }
        assertLTEError(try HuggingFaceModel.read(from: sharded), contains: "sharded")
        let other = try variant("other-model") { url in
            var bigger = c
            bigger.vocabSize += 1
            try LlamaConfigFile.encode(bigger).write(to: url.appendingPathComponent("config.json"))
        }
        assertLTEError(try HuggingFaceModel.read(from: other), contains: "model.embed_tokens.weight", "shape")
        assertLTEError(try HuggingFaceModel.read(from: dir.appendingPathComponent("missing")), contains: "not a directory")
    }

    /// Round 3 of the standard run merges heads 0, 1 (rejoining after a missed round: their delta
    /// spans two rounds of training) and 2, each with its factors at its previous merge.
    func testPeftAdapterOfARoundRebuildsThatRoundFromThePreviousOne() throws {
        try checkRoundAdapter(rule: .resetless, round: 3, wrapLMHead: false, expectedTerms: 6)
    }

    func testPeftAdapterUnderResetBHasNoCorrectionTermsAndCanWrapTheHead() throws {
        try checkRoundAdapter(rule: .resetB, round: 3, wrapLMHead: true, expectedTerms: 3)
    }

    private func checkRoundAdapter(rule: LoRAConfig.MergeRule, round: Int, wrapLMHead: Bool, expectedTerms: Int) throws {
        let dir = try makeTemporaryDirectory()
        let server = try SimulatedServer.standardRun(at: dir.appendingPathComponent("history.git"), rule: rule, wrapLMHead: wrapLMHead)
        let delta = try server.history.roundDelta(String(round))
        XCTAssertEqual(delta.terms.count, expectedTerms)
        XCTAssertEqual(delta.baseRound, round - 1)
        let url = dir.appendingPathComponent("adapter")
        try PeftAdapter.write(terms: delta.terms, layout: delta.layout, factor: delta.factor,
                              modulesToSave: (delta.replicatedSlots, delta.replicated), to: url)

        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: url.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        let r = try XCTUnwrap((config["r"] as? NSNumber)?.intValue)
        let alpha = try XCTUnwrap((config["lora_alpha"] as? NSNumber)?.doubleValue)
        XCTAssertEqual(r, server.lora.rank * expectedTerms)
        XCTAssertEqual(alpha / Double(r), Double(server.lora.scale / Float(server.lora.heads)), "PEFT's scale must be s/N exactly")
        XCTAssertEqual(config["peft_type"] as? String, "LORA")
        XCTAssertEqual(config["use_rslora"] as? Bool, false)
        XCTAssertEqual(config["use_dora"] as? Bool, false)
        let layout = server.layout, params = ParameterLayout(SimulatedServer.model)
        let targets = try XCTUnwrap(config["target_modules"] as? [String])
        XCTAssertEqual(Set(targets.map { $0 + ".weight" }), layout.wrappedTensorNames)
        XCTAssertEqual(targets.contains("lm_head"), wrapLMHead)
        let saved = try XCTUnwrap(config["modules_to_save"] as? [String])
        XCTAssertEqual(Set(saved.map { $0 + ".weight" }), Set(params.tensors.map(\.name)).subtracting(layout.wrappedTensorNames))

        let file = try SafeTensorsFile(contentsOf: url.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertEqual(file.names.count, 2 * targets.count + saved.count)
        let before = server.weightsAfter[round - 1]!, after = server.weightsAfter[round]!
        let factor = Double(alpha) / Double(r)
        for s in layout.sites {
            let module = "base_model.model." + s.site.projection.modulePath(layer: s.site.layer)
            let a = try XCTUnwrap(file[module + ".lora_A.weight"]), b = try XCTUnwrap(file[module + ".lora_B.weight"])
            XCTAssertEqual(a.shape, [r, s.inFeatures])
            XCTAssertEqual(b.shape, [s.outFeatures, r])
            // W_before + (α/r)·B A is W_after, up to the merge's float32 rounding.
            var worst = 0.0
            for i in 0..<s.outFeatures {
                for j in 0..<s.inFeatures {
                    var sum = 0.0
                    for k in 0..<r { sum += Double(b.values[i * r + k]) * Double(a.values[k * s.inFeatures + j]) }
                    let w = s.weight + i * s.inFeatures + j
                    worst = max(worst, abs(Double(before[w]) + factor * sum - Double(after[w])))
                }
            }
            XCTAssertLessThan(worst, 1e-5, module)
            XCTAssertFalse(zip(before[s.weight..<(s.weight + s.inFeatures * s.outFeatures)],
                               after[s.weight..<(s.weight + s.inFeatures * s.outFeatures)]).allSatisfy { $0 == $1 },
                           "round \(round) should change \(module)")
        }
        for t in params.tensors where !layout.wrappedTensorNames.contains(t.name) {
            let saved = try XCTUnwrap(file["base_model.model." + t.name], t.name)
            XCTAssertEqual(saved.values, Array(after[t.offset..<(t.offset + t.count)]), "\(t.name) is round \(round)'s, bit for bit")
        }
    }

    func testRoundZeroHasNoDelta() throws {
        let dir = try makeTemporaryDirectory()
        let server = try SimulatedServer(at: dir.appendingPathComponent("history.git"))
        assertLTEError(try server.history.roundDelta("0"), contains: "initial weights")
        assertLTEError(try server.history.roundDelta("nope"), contains: "unknown revision")
    }
}
