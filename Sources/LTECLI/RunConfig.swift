import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETraining

/// A run's config file (JSON): a "model" section in Hugging Face `LlamaConfig` names, a
/// "training" section, and an "lte" section for the low-rank modes.
/// Unknown keys are errors, not silently ignored: a typo in a hyperparameter should stop the run.
struct RunConfig {
    var model: ModelConfig
    var training: TrainingConfig
    var lte: LoRAConfig
    /// True when the file gave no vocab_size: the data's tokenizer decides it.
    var vocabFromData: Bool
    var source: String
    /// Every section as read (after overrides), so sections other commands own survive `effectiveJSON`.
    var sectionsAsRead: [String: Any] = [:]

    static let sections: [String: [String]] = [
        "model": ModelConfig.keys,
        "training": TrainingConfig.keys,
        "lte": LoRAConfig.keys,
    ]

    /// Reads `path`, applies `overrides` of the form `section.key=value`, and validates every key.
    static func load(_ path: String, overrides: [String] = []) throws -> RunConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LTEError("config file \(path) does not exist or cannot be read")
        }
        guard var root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw LTEError("config file \(path) is not a JSON object")
        }
        for o in overrides { try apply(override: o, to: &root) }
        for (section, value) in root {
            guard let allowed = sections[section] else {
                throw LTEError("config file \(path): unknown section \"\(section)\" (expected: \(sections.keys.sorted().joined(separator: ", ")))")
            }
            guard let dict = value as? [String: Any] else { throw LTEError("config file \(path): section \"\(section)\" must be an object") }
            for key in dict.keys where !allowed.contains(key) {
                throw LTEError("config file \(path): unknown key \"\(section).\(key)\"")
            }
        }
        var model = root["model"] as? [String: Any] ?? [:]
        let vocabFromData = model["vocab_size"] == nil
        if vocabFromData { model["vocab_size"] = 1 }
        if model["num_key_value_heads"] == nil, let h = model["num_attention_heads"] { model["num_key_value_heads"] = h }
        if model["rope_theta"] == nil { model["rope_theta"] = 10_000 }
        if model["rms_norm_eps"] == nil { model["rms_norm_eps"] = 1e-5 }
        do {
            let m = try JSONDecoder().decode(ModelConfig.self, from: JSONSerialization.data(withJSONObject: model))
            let t = try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: root["training"] ?? [:]))
            let l = try JSONDecoder().decode(LoRAConfig.self, from: JSONSerialization.data(withJSONObject: root["lte"] ?? [:]))
            try m.validate()
            try l.validate()
            return RunConfig(model: m, training: t, lte: l, vocabFromData: vocabFromData, source: path, sectionsAsRead: root)
        } catch let e as LTEError {
            throw LTEError("config file \(path): \(e.message)")
        } catch let DecodingError.keyNotFound(key, _) {
            throw LTEError("config file \(path): missing key \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.dataCorrupted(ctx) {
            let key = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw LTEError("config file \(path): wrong type for \"\(key)\"")
        }
    }

    /// The config as the run uses it — every model, training and lte value spelled out (vocab_size
    /// resolved, defaults filled in) — as JSON that `load` reads back to the same config.
    func effectiveJSON() throws -> Data {
        var root = sectionsAsRead
        let encoder = JSONEncoder()
        for (name, section) in [("model", try encoder.encode(model)), ("training", try encoder.encode(training)), ("lte", try encoder.encode(lte))] {
            root[name] = try JSONSerialization.jsonObject(with: section)
        }
        return try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys]) + Data("\n".utf8)
    }

    /// `training.learning_rate=3e-4` → root["training"]["learning_rate"] = 3e-4 (JSON-parsed value).
    static func apply(override: String, to root: inout [String: Any]) throws {
        let parts = override.split(separator: "=", maxSplits: 1).map(String.init)
        let path = parts.first?.split(separator: ".").map(String.init) ?? []
        guard parts.count == 2, path.count == 2 else {
            throw LTEError("override \"\(override)\" must look like section.key=value, e.g. training.learning_rate=3e-4")
        }
        let raw = parts[1]
        let value: Any = (try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: .fragmentsAllowed)) ?? raw
        var section = root[path[0]] as? [String: Any] ?? [:]
        section[path[1]] = value
        root[path[0]] = section
    }
}
