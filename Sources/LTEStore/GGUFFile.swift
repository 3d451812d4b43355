import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics

/// A GGUF v3 file of the model, as llama.cpp's `convert_hf_to_gguf.py` writes a LlamaForCausalLM:
///
///     header     "GGUF", version 3, tensor count, metadata count (all little-endian)
///     metadata   general.architecture "llama", llama.* hyperparameters, tokenizer.ggml.* (model "gpt2":
///                tokens spelled in `ByteLevelAlphabet`, token types, merges, pre-tokenizer "gpt-2")
///     tensors    names, dims (innermost first, so [out, in] is written in, out), type F32, offsets
///     data       each tensor's float32 values, aligned to 32 bytes
///
/// Tensors are renamed to llama.cpp's (`token_embd`, `blk.N.attn_q`, …), and Q and K rows are permuted
/// as the converter does: llama.cpp rotates adjacent pairs (2i, 2i+1) where Hugging Face rotates
/// halves (i, i + d/2), so within each head row j·2 + t of the file is row t·d/2 + j of ours.
/// LLaMA 3.1's rope scaling becomes `rope_freqs.weight`, the per-frequency divisor llama.cpp applies.
public enum GGUFFile {
    static let alignment = 32

    /// The file's bytes. `tokenizer` is the one to ship (nil: none); a char tokenizer must be ASCII,
    /// since llama.cpp's gpt2 tokenizer would otherwise need merges to build its characters.
    public static func encode(weights: FloatBuffer, config c: ModelConfig, tokenizer: (any Tokenizer)?,
                              special: LlamaConfigFile.SpecialTokens = .none, name: String = "lte") throws -> Data {
        let layout = ParameterLayout(c)
        precondition(weights.count == layout.count, "GGUFFile.encode: buffer does not match the config")
        var meta = GGUFMetadata()
        meta.string("general.architecture", "llama")
        meta.string("general.name", name)
        meta.uint32("general.file_type", 0)   // all F32
        meta.uint32("llama.vocab_size", c.vocabSize)
        meta.uint32("llama.context_length", c.contextLength)
        meta.uint32("llama.embedding_length", c.dim)
        meta.uint32("llama.block_count", c.layers)
        meta.uint32("llama.feed_forward_length", c.ffnDim)
        meta.uint32("llama.attention.head_count", c.heads)
        meta.uint32("llama.attention.head_count_kv", c.kvHeads)
        meta.uint32("llama.rope.dimension_count", c.headDim)
        meta.float32("llama.rope.freq_base", c.ropeTheta)
        meta.float32("llama.attention.layer_norm_rms_epsilon", c.normEps)
        if let tokenizer { try addTokenizer(tokenizer, vocabSize: c.vocabSize, to: &meta) }
        if let bos = special.bos { meta.uint32("tokenizer.ggml.bos_token_id", bos) }
        if let eos = special.eos { meta.uint32("tokenizer.ggml.eos_token_id", eos) }
        meta.bool("tokenizer.ggml.add_bos_token", false)
        meta.bool("tokenizer.ggml.add_eos_token", false)

        var tensors: [(name: String, dims: [Int], values: [Float])] = []
        for t in layout.tensors {
            var values = Array(UnsafeBufferPointer(start: weights.pointer + t.offset, count: t.count))
            if t.name.hasSuffix("self_attn.q_proj.weight") { values = permuteRotaryRows(values, heads: c.heads, headDim: c.headDim) }
            if t.name.hasSuffix("self_attn.k_proj.weight") { values = permuteRotaryRows(values, heads: c.kvHeads, headDim: c.headDim) }
            tensors.append((try tensorName(t.name), t.shape.reversed(), values))
        }
        if let scaling = c.ropeScaling {
            // llama.cpp divides each frequency θ^(−2i/d) by this: ours over the rescaled one.
            let divisors = (0..<c.headDim / 2).map { i -> Float in
                let invFreq = Float(1.0 / Foundation.pow(Double(c.ropeTheta), Double(2 * i) / Double(c.headDim)))
                return invFreq / scaling.rescale(invFreq)
            }
            tensors.append(("rope_freqs.weight", [divisors.count], divisors))
        }

        var out = GGUFWriter()
        out.bytes(Array("GGUF".utf8))
        out.uint32(3)
        out.uint64(tensors.count)
        out.uint64(meta.count)
        out.bytes(meta.data)
        var offset = 0
        for t in tensors {
            out.string(t.name)
            out.uint32(t.dims.count)
            for d in t.dims { out.uint64(d) }
            out.uint32(0)   // GGML_TYPE_F32
            out.uint64(offset)
            offset += padded(t.values.count * 4)
        }
        out.pad(to: alignment)
        for t in tensors {
            t.values.withUnsafeBytes { raw in out.bytes(Array(raw)) }   // float32, little-endian on every host we run
            out.pad(to: alignment)
        }
        return Data(out.data)
    }

    public static func write(weights: FloatBuffer, config: ModelConfig, tokenizer: (any Tokenizer)?,
                             special: LlamaConfigFile.SpecialTokens = .none, to url: URL) throws {
        let data = try encode(weights: weights, config: config, tokenizer: tokenizer, special: special)
        let parent = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)   // a temporary file renamed over the destination
        } catch {
            throw LTEError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    private static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// Hugging Face rotate-half rows to llama.cpp's interleaved pairs, head by head.
    static func permuteRotaryRows(_ w: [Float], heads: Int, headDim: Int) -> [Float] {
        let columns = w.count / (heads * headDim), half = headDim / 2
        var out = [Float](repeating: 0, count: w.count)
        for h in 0..<heads {
            for j in 0..<half {
                for t in 0..<2 {
                    let from = (h * headDim + t * half + j) * columns, to = (h * headDim + j * 2 + t) * columns
                    out.replaceSubrange(to..<(to + columns), with: w[from..<(from + columns)])
                }
            }
        }
        return out
    }

    /// llama.cpp's name for one of ours.
    static func tensorName(_ hf: String) throws -> String {
        switch hf {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let parts = hf.split(separator: ".")
        let names = ["self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                     "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                     "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"]
        guard parts.count >= 5, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              let short = names[parts[3..<(parts.count - 1)].joined(separator: ".")] else {
            throw LTEError("GGUF export: no llama.cpp name for tensor \(hf)")
        }
        return "blk.\(layer).\(short).weight"
    }

    private static func addTokenizer(_ tokenizer: any Tokenizer, vocabSize: Int, to meta: inout GGUFMetadata) throws {
        guard tokenizer.vocabSize == vocabSize else {
            throw LTEError("GGUF export: the tokenizer has \(tokenizer.vocabSize) ids, the model \(vocabSize)")
        }
        var tokens: [String]
        var merges: [String] = []
        var types = [Int32](repeating: 1, count: vocabSize)   // NORMAL
        switch tokenizer {
        case let bpe as BPETokenizer:
            let spelled = bpe.tokenBytes.map(ByteLevelAlphabet.string(of:))
            tokens = spelled
            merges = bpe.merges.map { spelled[Int($0.left)] + " " + spelled[Int($0.right)] }
            // Added tokens as llama.cpp's converter writes them: their content, CONTROL if special, else USER_DEFINED.
            for token in bpe.addedTokens {
                tokens[Int(token.id)] = token.content
                types[Int(token.id)] = token.special ? 3 : 4
            }
        case let char as CharTokenizer:
            guard let wide = char.vocabulary.first(where: { !$0.isASCII }) else {
                tokens = char.vocabulary.map { ByteLevelAlphabet.string(of: [UInt8($0.value)]) }
                break
            }
            throw LTEError("GGUF export: the char tokenizer holds \(String(wide).debugDescription), not ASCII; llama.cpp's gpt2 tokenizer cannot encode it as one token (export --format hf, or prepare the data with --tokenizer byte or bpe)")
        default:
            tokens = (0..<256).map { ByteLevelAlphabet.string(of: [UInt8($0)]) }
        }
        meta.string("tokenizer.ggml.model", "gpt2")
        meta.string("tokenizer.ggml.pre", "gpt-2")
        meta.strings("tokenizer.ggml.tokens", tokens)
        meta.int32s("tokenizer.ggml.token_type", types)
        meta.strings("tokenizer.ggml.merges", merges)
    }
}

/// Little-endian bytes in GGUF's encodings.
struct GGUFWriter {
    var data: [UInt8] = []
    mutating func bytes(_ b: [UInt8]) { data += b }
    mutating func uint32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { data += $0 } }
    mutating func uint64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { data += $0 } }
    mutating func int32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func float32(_ v: Float) { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
    mutating func string(_ s: String) { uint64(s.utf8.count); data += Array(s.utf8) }
    mutating func pad(to alignment: Int) { data += [UInt8](repeating: 0, count: (alignment - data.count % alignment) % alignment) }
}

/// GGUF key-value pairs, counted as they are added.
struct GGUFMetadata {
    private(set) var count = 0
    private var writer = GGUFWriter()
    var data: [UInt8] { writer.data }

    private enum ValueType: Int { case uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8, array = 9 }

    private mutating func key(_ k: String, _ type: ValueType) { count += 1; writer.string(k); writer.uint32(type.rawValue) }
    mutating func uint32(_ k: String, _ v: Int) { key(k, .uint32); writer.uint32(v) }
    mutating func float32(_ k: String, _ v: Float) { key(k, .float32); writer.float32(v) }
    mutating func bool(_ k: String, _ v: Bool) { key(k, .bool); writer.bytes([v ? 1 : 0]) }
    mutating func string(_ k: String, _ v: String) { key(k, .string); writer.string(v) }
    mutating func strings(_ k: String, _ v: [String]) {
        key(k, .array); writer.uint32(ValueType.string.rawValue); writer.uint64(v.count)
        for s in v { writer.string(s) }
    }
    mutating func int32s(_ k: String, _ v: [Int32]) {
        key(k, .array); writer.uint32(ValueType.int32.rawValue); writer.uint64(v.count)
        for x in v { writer.int32(x) }
    }
}
