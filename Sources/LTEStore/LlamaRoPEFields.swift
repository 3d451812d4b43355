import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// RoPE's fields in a Llama `config.json`, in both layouts `transformers` has used:
///
///     4.x   "rope_theta": 500000.0, "rope_scaling": null | {"rope_type": "llama3", "factor": 8.0, …}
///     5.x   "rope_parameters": {"rope_type": "default" | "llama3", "rope_theta": 500000.0, …}
///
/// A file may hold both (ours do, so either version reads it); they must then agree, since each
/// version reads only its own and a disagreement means two different models. Every rope type but
/// the plain one and LLaMA 3.1's (`RoPEScaling`) is refused, as is any key in the RoPE object that
/// this decoder would ignore (a partial rotary factor, YaRN's betas, …).
enum LlamaRoPEFields {
    /// θ and the scaling the config describes.
    static func read(_ json: ConfigJSON) throws -> (theta: Float, scaling: RoPEScaling?) {
        let fail = json.fail
        if json.present("partial_rotary_factor") != nil, try json.float("partial_rotary_factor", default: 1) != 1 {
            throw fail("\"partial_rotary_factor\" is not 1; this decoder rotates the whole head")
        }
        let topTheta = json.present("rope_theta") == nil ? nil : try json.float("rope_theta", default: 10_000)
        var theta = topTheta
        var fromParameters: RoPEScaling?? = nil   // nil: no rope_parameters; .some(nil): plain RoPE
        if let value = json.present("rope_parameters") {
            guard let object = value as? [String: Any] else { throw fail("\"rope_parameters\" must be an object") }
            let parsed = try parse(object, key: "rope_parameters", fail: fail)
            if let inner = parsed.theta {
                if let topTheta, topTheta != inner {
                    throw fail("\"rope_theta\" \(topTheta) and \"rope_parameters.rope_theta\" \(inner) disagree (transformers 4 reads the one, 5 the other)")
                }
                theta = inner
            }
            fromParameters = .some(parsed.scaling)
        }
        var scaling: RoPEScaling?
        if let value = json.present("rope_scaling") {
            guard let object = value as? [String: Any] else { throw fail("\"rope_scaling\" must be an object or null") }
            let parsed = try parse(object, key: "rope_scaling", fail: fail)
            if let inner = parsed.theta, inner != theta ?? 10_000 {
                throw fail("\"rope_scaling.rope_theta\" \(inner) disagrees with the config's rope_theta")
            }
            scaling = parsed.scaling
            if let fromParameters, fromParameters != scaling {
                throw fail("\"rope_scaling\" and \"rope_parameters\" describe different RoPE (transformers 4 reads the one, 5 the other)")
            }
        } else if let fromParameters {
            scaling = fromParameters
            // A 5.x file with llama3 in rope_parameters and an explicit rope_scaling null is fine:
            // 5.x wrote it; 4.x readers are not our concern for files we did not write.
        }
        return (theta ?? 10_000, scaling)
    }

    /// One RoPE object: its type (rope_type, or type in early 4.x files), θ if it holds one, and the
    /// llama3 parameters.
    private static func parse(_ object: [String: Any], key: String, fail: @escaping (String) -> LTEError) throws -> (theta: Float?, scaling: RoPEScaling?) {
        let typeValue = ConfigJSON.present(object["rope_type"]) ?? ConfigJSON.present(object["type"]) ?? "default"
        guard let type = typeValue as? String else { throw fail("\"\(key).rope_type\" must be a string") }
        let common: Set<String> = ["rope_type", "type", "rope_theta", "partial_rotary_factor"]
        let llama3: Set<String> = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"]
        let allowed: Set<String>
        switch type {
        case "default": allowed = common
        case RoPEScaling.llama3: allowed = common.union(llama3)
        default:
            throw fail("\"\(key).rope_type\" is \"\(type)\"; this decoder supports only \"default\" and \"llama3\" RoPE")
        }
        if let extra = object.keys.sorted().first(where: { !allowed.contains($0) && ConfigJSON.present(object[$0]) != nil }) {
            throw fail("\"\(key).\(extra)\" is not supported with rope_type \"\(type)\"")
        }
        let inner = ConfigJSON(object) { fail("\(key): " + $0) }
        if inner.present("partial_rotary_factor") != nil, try inner.float("partial_rotary_factor", default: 1) != 1 {
            throw fail("\"\(key).partial_rotary_factor\" is not 1; this decoder rotates the whole head")
        }
        let theta = inner.present("rope_theta") == nil ? nil : try inner.float("rope_theta", default: 10_000)
        guard type == RoPEScaling.llama3 else { return (theta, nil) }
        for name in llama3.sorted() where inner.present(name) == nil {
            throw fail("\"\(key)\" has rope_type \"llama3\" but no \"\(name)\"")
        }
        let scaling = RoPEScaling(factor: try inner.float("factor", default: 1), lowFreqFactor: try inner.float("low_freq_factor", default: 1),
                                  highFreqFactor: try inner.float("high_freq_factor", default: 4),
                                  originalMaxPositionEmbeddings: try inner.int("original_max_position_embeddings"))
        if let problem = scaling.problem { throw fail("\"\(key)\": \(problem)") }
        return (theta, scaling)
    }

    /// transformers 5's `rope_parameters`, indented to sit in `LlamaConfigFile.encode`'s object.
    static func parameters(_ c: ModelConfig, indent: String) -> String {
        var fields = [("rope_theta", LlamaConfigFile.number(c.ropeTheta)), ("rope_type", "\"default\"")]
        if let s = c.ropeScaling { fields = llama3Fields(s) + [("rope_theta", LlamaConfigFile.number(c.ropeTheta)), ("rope_type", "\"llama3\"")] }
        return object(fields, indent: indent)
    }

    /// transformers 4's `rope_scaling` for a llama3 scaling.
    static func scaling(_ s: RoPEScaling, indent: String) -> String {
        object(llama3Fields(s) + [("rope_type", "\"llama3\"")], indent: indent)
    }

    private static func llama3Fields(_ s: RoPEScaling) -> [(String, String)] {
        [("factor", LlamaConfigFile.number(s.factor)), ("high_freq_factor", LlamaConfigFile.number(s.highFreqFactor)),
         ("low_freq_factor", LlamaConfigFile.number(s.lowFreqFactor)),
         ("original_max_position_embeddings", String(s.originalMaxPositionEmbeddings))]
    }

    private static func object(_ fields: [(String, String)], indent: String) -> String {
        "{\n" + fields.map { "\(indent)  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n\(indent)}"
    }
}
