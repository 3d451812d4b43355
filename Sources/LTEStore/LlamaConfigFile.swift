import Foundation
import LTEBase
import LTEModel

/// `config.json` of a Hugging Face `LlamaForCausalLM` checkpoint, written from a `ModelConfig` and
/// read back into one.
///
/// Writing gives every field `transformers` needs to build the same model (untied head, SiLU, no
/// biases, float32). Reading accepts any Llama config `transformers` would, as long as it describes
/// a model this code can run: unknown fields are ignored (real configs carry dozens), absent optional
/// ones take `LlamaConfig`'s defaults, and features this decoder lacks (tied embeddings, biases, rope
/// scaling, another activation) are errors rather than silently different models.
public enum LlamaConfigFile {
    /// The JSON, keys sorted and indented as `transformers`' `to_json_file` writes them.
    public static func encode(_ c: ModelConfig) -> Data {
        let fields: [(String, String)] = [
            ("architectures", "[\"LlamaForCausalLM\"]"),
            ("attention_bias", "false"),
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
            ("rms_norm_eps", number(c.normEps)),
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
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw LTEError("model config \(url.path) does not exist or cannot be read")
        }
        return try decode(data, source: url.path)
    }

    /// Parses a `config.json`; `source` names it in error messages.
    public static func decode(_ data: Data, source: String) throws -> ModelConfig {
        func fail(_ why: String) -> LTEError { LTEError("model config \(source): \(why)") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        func present(_ key: String) -> Any? {
            guard let value = json[key], !(value is NSNull) else { return nil }
            return value
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let value = present(key) else {
                if let d { return d }
                throw fail("missing \"\(key)\"")
            }
            guard let n = value as? NSNumber, !isBool(n), let i = Int(exactly: n.doubleValue) else {
                throw fail("\"\(key)\" must be an integer")
            }
            return i
        }
        func float(_ key: String, default d: Float) throws -> Float {
            guard let value = present(key) else { return d }
            guard let n = value as? NSNumber, !isBool(n) else { throw fail("\"\(key)\" must be a number") }
            return n.floatValue
        }
        func string(_ key: String, expected: String) throws {
            guard let value = present(key) else { return }
            guard let s = value as? String, s == expected else {
                throw fail("\"\(key)\" is \(describe(value)); this decoder supports only \"\(expected)\"")
            }
        }
        func off(_ key: String, what: String) throws {
            guard let value = present(key) else { return }
            guard let n = value as? NSNumber, isBool(n) else { throw fail("\"\(key)\" must be true or false") }
            if n.boolValue { throw fail("\"\(key)\" is true; \(what)") }
        }

        try string("model_type", expected: "llama")
        try string("hidden_act", expected: "silu")
        try off("tie_word_embeddings", what: "this decoder has an untied lm_head (set it to false)")
        try off("attention_bias", what: "this decoder has no biases")
        try off("mlp_bias", what: "this decoder has no biases")
        if let scaling = present("rope_scaling") {
            throw fail("\"rope_scaling\" is \(describe(scaling)); this decoder supports only plain RoPE (null)")
        }
        let heads = try int("num_attention_heads")
        let config = ModelConfig(
            vocabSize: try int("vocab_size"), dim: try int("hidden_size"), layers: try int("num_hidden_layers"),
            heads: heads, kvHeads: try int("num_key_value_heads", default: heads), ffnDim: try int("intermediate_size"),
            // LlamaConfig's defaults for the optional fields.
            contextLength: try int("max_position_embeddings", default: 2048),
            ropeTheta: try float("rope_theta", default: 10_000), normEps: try float("rms_norm_eps", default: 1e-6))
        do { try config.validate() } catch let e as LTEError { throw fail(e.message) }
        if present("head_dim") != nil {
            let headDim = try int("head_dim")
            guard headDim == config.headDim else {
                throw fail("head_dim \(headDim) is not hidden_size / num_attention_heads = \(config.headDim); this decoder needs them equal")
            }
        }
        return config
    }

    /// JSONSerialization gives booleans as NSNumber too; tell them apart from 0 and 1.
    private static func isBool(_ n: NSNumber) -> Bool {
        #if canImport(Darwin)
        return CFGetTypeID(n) == CFBooleanGetTypeID()
        #else
        return type(of: n) != NSNumber.self && String(cString: n.objCType) == "c"   // __NSCFBoolean
        #endif
    }

    private static func describe(_ value: Any) -> String {
        if let s = value as? String { return "\"\(s)\"" }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }
}
