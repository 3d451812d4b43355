import Foundation
import LTEData
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// The GGUF writer against naive references: llama.cpp's rotation of adjacent pairs on the permuted
/// rows must equal Hugging Face's rotate-half on ours, and the header must parse as GGUF v3.
/// (experiments/hf-parity reads whole files with the gguf package, and llama.cpp when installed.)
final class GGUFFileTests: XCTestCase {
    func testPermutedRowsRotatedInPairsEqualRotateHalf() {
        let heads = 2, headDim = 8, columns = 3, half = headDim / 2
        var rng = SystemRandomNumberGenerator()
        let w = (0..<heads * headDim * columns).map { _ in Float.random(in: -1...1, using: &rng) }
        let x = (0..<columns).map { _ in Float.random(in: -1...1, using: &rng) }
        let permuted = GGUFFile.permuteRotaryRows(w, heads: heads, headDim: headDim)
        func project(_ m: [Float]) -> [Float] { (0..<heads * headDim).map { r in (0..<columns).reduce(0) { $0 + m[r * columns + $1] * x[$1] } } }
        let q = project(w), p = project(permuted)
        let angle = { (j: Int) in 5 * Float(Foundation.pow(10_000.0, -Double(2 * j) / Double(headDim))) }   // position 5
        for h in 0..<heads {
            for j in 0..<half {
                let (c, s) = (Foundation.cos(angle(j)), Foundation.sin(angle(j)))
                let a = q[h * headDim + j], b = q[h * headDim + j + half]   // Hugging Face: (j, j + d/2)
                let u = p[h * headDim + 2 * j], v = p[h * headDim + 2 * j + 1]   // llama.cpp: (2j, 2j + 1)
                XCTAssertEqual(u * c - v * s, a * c - b * s, accuracy: 1e-5)
                XCTAssertEqual(v * c + u * s, b * c + a * s, accuracy: 1e-5)
            }
        }
    }

    func testHeaderAndTensorNames() throws {
        let c = ModelConfig(vocabSize: 256, dim: 16, layers: 1, heads: 2, kvHeads: 1, ffnDim: 32, contextLength: 8)
        let data = try GGUFFile.encode(weights: FloatBuffer(count: ParameterLayout(c).count), config: c, tokenizer: ByteTokenizer())
        let bytes = [UInt8](data)
        func u32(_ at: Int) -> UInt32 { bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        func u64(_ at: Int) -> UInt64 { bytes[at..<at + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        XCTAssertEqual(Array(bytes[0..<4]), Array("GGUF".utf8))
        XCTAssertEqual(u32(4), 3)
        XCTAssertEqual(u64(8), UInt64(ParameterLayout(c).tensors.count))
        XCTAssertEqual(data.count % GGUFFile.alignment, 0)
        XCTAssertEqual(try GGUFFile.tensorName("model.layers.0.self_attn.k_proj.weight"), "blk.0.attn_k.weight")
        XCTAssertEqual(try GGUFFile.tensorName("model.layers.3.post_attention_layernorm.weight"), "blk.3.ffn_norm.weight")
        let wide = try CharTokenizer(corpus: "ab☃")
        var small = c
        small.vocabSize = wide.vocabSize
        assertLTEError(try GGUFFile.encode(weights: FloatBuffer(count: ParameterLayout(small).count), config: small, tokenizer: wide), contains: "☃")
    }
}
