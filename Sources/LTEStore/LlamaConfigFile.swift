import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// `config.json` of a Hugging Face `LlamaForCausalLM` checkpoint, written from a `ModelConfig` and
/// read back into one.
///
/// Writing gives every field `transformers` needs to build the same model (untied head, SiLU, no
/// biases, float32), with RoPE in both layouts: transformers 5 reads `rope_parameters` (theta and type
/// inside), 4.x reads top-level `rope_theta` and `rope_scaling` and ignores `rope_parameters`; writing
/// one layout only would make the other version silently fall back to θ = 10000. Reading accepts
/// either layout (`LlamaRoPEFields`) and any Llama config `transformers` would, as long as it describes
/// a model this code can run: unknown fields are ignored (real configs carry dozens), absent optional
/// ones take `LlamaConfig`'s defaults, and every field that would change the math and is not
/// implemented (tied embeddings, biases, another activation or head_dim, rope types other than
/// llama3, quantization) is an error naming the key rather than a silently different model.
public enum LlamaConfigFile {
    /// The ids `generate` and tokenizers treat as start and end of text; nil is written as null
    /// (transformers 5's LlamaConfig would otherwise default to 1 and 2, which our vocabularies do
    /// not reserve).
    public struct SpecialTokens: Equatable, Sendable {
        public var bos: Int?
        public var eos: Int?
        public init(bos: Int? = nil, eos: Int? = nil) { self.bos = bos; self.eos = eos }
        public static let none = SpecialTokens()
    }

    /// The JSON, keys sorted and indented as `transformers`' `to_json_file` writes them.
    public static func encode(_ c: ModelConfig, special: SpecialTokens = .none) -> Data {
        let id = { (n: Int?) in n.map(String.init) ?? "null" }
        let fields: [(String, String)] = [
            ("architectures", "[\"LlamaForCausalLM\"]"),
            ("attention_bias", "false"),
            ("bos_token_id", id(special.bos)),
            ("eos_token_id", id(special.eos)),
            ("head_dim", String(c.headDim)),
            ("hidden_act", "\"silu\""),
            ("hidden_size", String(c.dim)),
            ("intermediate_size", String(c.ffnDim)),
            ("max_position_embeddings", String(c.contextLength)),
            ("mlp_bias", "false"),
            ("model_type", "\"llama\""),
            ("num_attention_heads", String(c.heads)),
            ("num_hidden_layers", String(c.layers)),
            ("num_key_value_heads", String(c.kvHeads)),
            ("pad_token_id", "null"),
            ("rms_norm_eps", number(c.normEps)),
            ("rope_parameters", LlamaRoPEFields.parameters(c, indent: "  ")),
            ("rope_scaling", c.ropeScaling.map { LlamaRoPEFields.scaling($0, indent: "  ") } ?? "null"),
            ("rope_theta", number(c.ropeTheta)),
            ("tie_word_embeddings", "false"),
            ("torch_dtype", "\"float32\""),
            ("vocab_size", String(c.vocabSize)),
        ]
        return Data(("{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n").utf8)
    }

    /// The shortest decimal that reads back as the same float32 ("1e-05", "10000.0").
    static func number(_ x: Float) -> String { "\(x)" }

    public static func write(_ c: ModelConfig, to url: URL) throws {
        do { try encode(c).write(to: url, options: .atomic) } catch {
            throw LTEError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    public static func read(from url: URL) throws -> ModelConfig {
        try readWithSpecialTokens(from: url).config
    }

    /// The model, the bos/eos ids the file names (null, absent or a list of several: nil), and
    /// whether lm_head shares the embedding's tensor (`tie_word_embeddings`).
    public static func readWithSpecialTokens(from url: URL) throws -> (config: ModelConfig, special: SpecialTokens, tiedEmbeddings: Bool) {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw LTEError("model config \(url.path) does not exist or cannot be read")
        }
        return try decodeWithSpecialTokens(data, source: url.path)
    }

    /// Parses a `config.json`; `source` names it in error messages.
    public static func decode(_ data: Data, source: String) throws -> ModelConfig {
        try decodeWithSpecialTokens(data, source: source).config
    }

    public static func decodeWithSpecialTokens(_ data: Data, source: String) throws -> (config: ModelConfig, special: SpecialTokens, tiedEmbeddings: Bool) {
        func fail(_ why: String) -> LTEError { LTEError("model config \(source): \(why)") }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        let json = ConfigJSON(object, fail: fail)

        try json.string("model_type", expected: "llama")
        try json.string("hidden_act", expected: "silu")
        // A tied lm_head is read as an untied one holding the embedding's values: the same logits.
        let tied = try json.bool("tie_word_embeddings", default: false)
        try json.off("attention_bias", what: "this decoder has no biases")
        try json.off("mlp_bias", what: "this decoder has no biases")
        if let q = json.present("quantization_config") {
            throw fail("\"quantization_config\" is \(ConfigJSON.describe(q)); only float32 weights are read (dequantize first)")
        }
        let rope = try LlamaRoPEFields.read(json)
        let heads = try json.int("num_attention_heads")
        let config = ModelConfig(
            vocabSize: try json.int("vocab_size"), dim: try json.int("hidden_size"), layers: try json.int("num_hidden_layers"),
            heads: heads, kvHeads: try json.int("num_key_value_heads", default: heads), ffnDim: try json.int("intermediate_size"),
            // LlamaConfig's defaults for the optional fields.
            contextLength: try json.int("max_position_embeddings", default: 2048),
            ropeTheta: rope.theta, normEps: try json.float("rms_norm_eps", default: 1e-6), ropeScaling: rope.scaling)
        do { try config.validate() } catch let e as LTEError { throw fail(e.message) }
        if json.present("head_dim") != nil {
            let headDim = try json.int("head_dim")
            guard headDim == config.headDim else {
                throw fail("head_dim \(headDim) is not hidden_size / num_attention_heads = \(config.headDim); this decoder needs them equal")
            }
        }
        let special = SpecialTokens(bos: json.tokenID("bos_token_id"), eos: json.tokenID("eos_token_id"))
        return (config, special, tied)
    }
}

/// Typed access to a parsed config.json, each failure an error naming the key.
struct ConfigJSON {
    let object: [String: Any]
    let fail: (String) -> LTEError

    init(_ object: [String: Any], fail: @escaping (String) -> LTEError) { self.object = object; self.fail = fail }

    func present(_ key: String) -> Any? { Self.present(object[key]) }

    static func present(_ value: Any?) -> Any? {
        guard let value, !(value is NSNull) else { return nil }
        return value
    }

    func int(_ key: String, default d: Int? = nil) throws -> Int {
        guard let value = present(key) else {
            if let d { return d }
            throw fail("missing \"\(key)\"")
        }
        guard let n = value as? NSNumber, !Self.isBool(n), let i = Int(exactly: n.doubleValue) else {
            throw fail("\"\(key)\" must be an integer")
        }
        return i
    }

    func float(_ key: String, default d: Float) throws -> Float {
        guard let value = present(key) else { return d }
        guard let n = value as? NSNumber, !Self.isBool(n) else { throw fail("\"\(key)\" must be a number") }
        return n.floatValue
    }

    func string(_ key: String, expected: String) throws {
        guard let value = present(key) else { return }
        guard let s = value as? String, s == expected else {
            throw fail("\"\(key)\" is \(Self.describe(value)); this decoder supports only \"\(expected)\"")
        }
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = present(key) else { return fallback }
        guard let n = value as? NSNumber, Self.isBool(n) else { throw fail("\"\(key)\" must be true or false") }
        return n.boolValue
    }

    func off(_ key: String, what: String) throws {
        guard let value = present(key) else { return }
        guard let n = value as? NSNumber, Self.isBool(n) else { throw fail("\"\(key)\" must be true or false") }
        if n.boolValue { throw fail("\"\(key)\" is true; \(what)") }
    }

    /// A single token id; a list (several end tokens) or anything else reads as none.
    func tokenID(_ key: String) -> Int? {
        guard let n = present(key) as? NSNumber, !Self.isBool(n), let i = Int(exactly: n.doubleValue), i >= 0 else { return nil }
        return i
    }

    /// JSONSerialization gives booleans as NSNumber too; tell them apart from 0 and 1.
    static func isBool(_ n: NSNumber) -> Bool {
        #if canImport(Darwin)
        return CFGetTypeID(n) == CFBooleanGetTypeID()
        #else
        return type(of: n) != NSNumber.self && String(cString: n.objCType) == "c"   // __NSCFBoolean
        #endif
    }

    static func describe(_ value: Any) -> String {
        if let s = value as? String { return "\"\(s)\"" }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }
}
