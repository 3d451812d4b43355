import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// config.json keys that change the math: read when implemented, otherwise one error naming the key.
final class LlamaConfigFileTests: XCTestCase {
    private let base: [String: Any] = [
        "model_type": "llama", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
    ]

    private func decode(_ changes: [String: Any]) throws -> ModelConfig {
        let json = base.merging(changes) { _, new in new }
        return try LlamaConfigFile.decode(JSONSerialization.data(withJSONObject: json), source: "config.json")
    }

    private let llama3: [String: Any] = ["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                         "original_max_position_embeddings": 256]

    func testBothRoPELayoutsRead() throws {
        XCTAssertEqual(try decode([:]).ropeTheta, 10_000)
        XCTAssertEqual(try decode(["rope_theta": 500_000]).ropeTheta, 500_000)
        XCTAssertEqual(try decode(["rope_parameters": ["rope_type": "default", "rope_theta": 500_000]]).ropeTheta, 500_000)
        let scaled = RoPEScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 256)
        let v5 = try decode(["rope_parameters": llama3.merging(["rope_theta": 500_000]) { _, b in b }])
        XCTAssertEqual(v5.ropeTheta, 500_000)
        XCTAssertEqual(v5.ropeScaling, scaled)
        let v4 = try decode(["rope_theta": 500_000, "rope_scaling": llama3])
        XCTAssertEqual(v4, v5)
        var early = llama3
        early["type"] = early.removeValue(forKey: "rope_type")
        XCTAssertEqual(try decode(["rope_theta": 500_000, "rope_scaling": early]), v5)
        // Our own export, both layouts at once, reads back the same.
        XCTAssertEqual(try LlamaConfigFile.decode(LlamaConfigFile.encode(v5), source: "export"), v5)
    }

    func testKeysThatChangeTheMathAreRefusedByName() {
        let cases: [([String: Any], String)] = [
            (["rope_parameters": ["rope_type": "yarn", "rope_theta": 10_000, "factor": 4.0]], "yarn"),
            (["rope_scaling": ["type": "linear", "factor": 2.0]], "linear"),
            (["rope_scaling": ["rope_type": "dynamic", "factor": 2.0]], "dynamic"),
            (["rope_parameters": ["rope_type": "default", "rope_theta": 10_000, "partial_rotary_factor": 0.5]], "partial_rotary_factor"),
            (["rope_parameters": ["rope_type": "llama3", "factor": 8.0]], "high_freq_factor"),
            (["rope_parameters": ["rope_type": "default", "rope_theta": 10_000, "factor": 2.0]], "rope_parameters.factor"),
            (["rope_theta": 10_000, "rope_parameters": ["rope_type": "default", "rope_theta": 500_000]], "disagree"),
            (["rope_scaling": llama3, "rope_parameters": ["rope_type": "default", "rope_theta": 10_000]], "rope_scaling"),
            (["attention_bias": true], "attention_bias"),
            (["mlp_bias": true], "mlp_bias"),
            (["hidden_act": "gelu"], "hidden_act"),
            (["head_dim": 16], "head_dim"),
            (["tie_word_embeddings": 1], "tie_word_embeddings"),
            (["quantization_config": ["quant_method": "bitsandbytes"]], "quantization_config"),
            (["model_type": "mistral"], "model_type"),
        ]
        for (change, key) in cases {
            assertLTEError(try decode(change), contains: "config.json", key)
        }
    }
}
