import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// Parity with transformers in CI, without Python: Tests/Fixtures/hf-llama holds a tiny
/// LlamaForCausalLM (GQA 4 over 2 heads, rope_theta 500000, transformers 5's rope_parameters layout)
/// saved by transformers' save_pretrained, once plain and once with LLaMA 3.1's llama3 rope scaling,
/// and the logits transformers computed on a few sequences (experiments/hf-fixture wrote them). lte
/// imports each with its own import code and must give the same logits within 1e-4, as llm.c's test
/// checks its forward pass against PyTorch's.
final class HuggingFaceFixtureTests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures/hf-llama")
    static let tolerance: Float = 1e-4

    private struct Reference: Decodable {
        let sequences: [[Int32]]
        let plain: [[[Float]]]
        let llama3: [[[Float]]]
    }

    private func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("logits.json")))
    }

    private func logits(_ contents: HuggingFaceModel.Contents, _ tokens: [Int32]) throws -> [[Float]] {
        let c = contents.config
        let model = try Transformer(config: c, trainable: { _ in false })
        model.params.copy(from: contents.weights)
        let acts = Activations(config: c, batch: 1, seqLen: tokens.count)
        _ = tokens.withUnsafeBufferPointer { model.forward(acts, tokens: $0.baseAddress!, targets: nil, forTraining: false) }
        return (0..<tokens.count).map { t in Array(UnsafeBufferPointer(start: acts.logits.pointer + t * c.vocabSize, count: c.vocabSize)) }
    }

    private func maxDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
    }

    func testPlainRoPEImportMatchesTransformersLogits() throws {
        let model = try HuggingFaceModel.read(from: Self.fixtures.appendingPathComponent("plain"))
        XCTAssertEqual(model.config.ropeTheta, 500_000, "theta must come from rope_parameters, not the 10000 default")
        XCTAssertEqual(model.config.kvHeads, 2)
        XCTAssertNil(model.config.ropeScaling)
        let ref = try reference()
        for (tokens, expected) in zip(ref.sequences, ref.plain) {
            let diff = maxDifference(try logits(model, tokens), expected)
            XCTAssertLessThanOrEqual(diff, Self.tolerance, "\(tokens.count) tokens: max |lte - transformers| = \(diff)")
        }
    }

    func testLlama3ScaledRoPEImportMatchesTransformersLogits() throws {
        let model = try HuggingFaceModel.read(from: Self.fixtures.appendingPathComponent("llama3"))
        XCTAssertEqual(model.config.ropeScaling,
                       RoPEScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 256))
        let ref = try reference()
        for (i, (tokens, expected)) in zip(ref.sequences, ref.llama3).enumerated() {
            let ours = try logits(model, tokens)
            let diff = maxDifference(ours, expected)
            XCTAssertLessThanOrEqual(diff, Self.tolerance, "\(tokens.count) tokens: max |lte - transformers| = \(diff)")
            // The scaling must matter at these positions, or this test could not fail.
            if tokens.count > 8 { XCTAssertGreaterThan(maxDifference(ours, ref.plain[i]), 100 * Self.tolerance) }
        }
    }

    /// Export writes theta and the scaling in both layouts; reading the export gives the same model,
    /// and the file says the same to transformers 4 (rope_theta, rope_scaling) and 5 (rope_parameters).
    func testExportKeepsThetaAndScalingInBothLayouts() throws {
        let dir = try makeTemporaryDirectory()
        let source = try HuggingFaceModel.read(from: Self.fixtures.appendingPathComponent("llama3"))
        let out = dir.appendingPathComponent("export")
        try HuggingFaceModel.write(weights: source.weights, config: source.config, tokenizer: nil, to: out)
        let back = try HuggingFaceModel.read(from: out)
        XCTAssertEqual(back.config, source.config)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as! [String: Any]
        let parameters = try XCTUnwrap(json["rope_parameters"] as? [String: Any])
        let scaling = try XCTUnwrap(json["rope_scaling"] as? [String: Any])
        XCTAssertEqual((json["rope_theta"] as? NSNumber)?.floatValue, 500_000)
        XCTAssertEqual((parameters["rope_theta"] as? NSNumber)?.floatValue, 500_000)
        for object in [parameters, scaling] {
            XCTAssertEqual(object["rope_type"] as? String, "llama3")
            XCTAssertEqual((object["factor"] as? NSNumber)?.floatValue, 8)
            XCTAssertEqual((object["original_max_position_embeddings"] as? NSNumber)?.intValue, 256)
        }
        XCTAssertTrue(json["bos_token_id"] is NSNull && json["eos_token_id"] is NSNull, "explicit nulls, not transformers 5's 1 and 2")
    }
}
