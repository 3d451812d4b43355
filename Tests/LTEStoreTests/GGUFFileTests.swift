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

    /// Added tokens go out as llama.cpp's converter writes them: their content as it is (not spelled
    /// byte-level), CONTROL (3) when special, USER_DEFINED (4) when not; the rest NORMAL (1).
    func testAddedTokensKeepTheirContentAndTypes() throws {
        let file = packageRoot.appendingPathComponent("Tests/Fixtures/tokenizers/added-tokens.json")
        let tokenizer = try XCTUnwrap(try Tokenizers.load(from: file) as? BPETokenizer)
        let c = ModelConfig(vocabSize: tokenizer.vocabSize, dim: 16, layers: 1, heads: 2, kvHeads: 1, ffnDim: 32, contextLength: 8)
        let bytes = [UInt8](try GGUFFile.encode(weights: FloatBuffer(count: ParameterLayout(c).count), config: c, tokenizer: tokenizer))
        func u64(_ at: Int) -> Int { Int(bytes[at..<at + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
        /// The start of an array value's elements after `key` (key, value type 9, element type, count).
        func array(_ key: String) throws -> (count: Int, at: Int) {
            let needle = Array(key.utf8)
            let start = try XCTUnwrap((0...(bytes.count - needle.count)).first { bytes[$0..<$0 + needle.count].elementsEqual(needle) })
            let after = start + needle.count
            return (u64(after + 8), after + 16)
        }
        var (count, at) = try array("tokenizer.ggml.tokens")
        var tokens: [String] = []
        for _ in 0..<count {
            let length = u64(at)
            tokens.append(String(decoding: bytes[at + 8..<at + 8 + length], as: UTF8.self))
            at += 8 + length
        }
        (count, at) = try array("tokenizer.ggml.token_type")
        let types = (0..<count).map { i in Int32(bitPattern: bytes[at + 4 * i..<at + 4 * i + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        XCTAssertEqual(tokens.count, 306)
        XCTAssertEqual(types.count, 306)
        for token in tokenizer.addedTokens {
            XCTAssertEqual(tokens[Int(token.id)], token.content)
            XCTAssertEqual(types[Int(token.id)], token.special ? 3 : 4, token.content)
        }
        XCTAssertEqual(tokens[302], " wisdom")
        XCTAssertEqual(types.filter { $0 == 1 }.count, 306 - 7)
    }
}
