import LTEBase
import LTENumerics

/// The shape of a LLaMA-style decoder. Coding keys are Hugging Face's `LlamaConfig` names, so a
/// `config.json` written from this is what `transformers` expects and export is a rename.
///
/// The defaults of the optional fields live here, once: the memberwise init and the decoder (a run
/// config's "model" section) both take them from `Defaults`. (`LlamaConfigFile` reads Hugging Face
/// `config.json` files with `transformers`' own defaults instead, which differ: rms_norm_eps 1e-6.)
public struct ModelConfig: Codable, Equatable, Sendable {
    public enum Defaults {
        public static let ropeTheta: Float = 10_000
        public static let normEps: Float = 1e-5
        // num_key_value_heads: num_attention_heads (no grouped-query attention).
    }

    /// `vocabSize` of a config that does not give one: the data's tokenizer decides it (`RunConfig.vocabFromData`).
    public static let vocabularyFromData = 0

    public var vocabSize: Int
    public var dim: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var ffnDim: Int
    public var contextLength: Int
    public var ropeTheta: Float
    public var normEps: Float
    /// LLaMA 3.1's frequency rewrite; nil is plain RoPE (and is left out of the JSON, so configs and
    /// run fingerprints written before it existed read and hash the same).
    public var ropeScaling: RoPEScaling?

    public init(vocabSize: Int, dim: Int, layers: Int, heads: Int, kvHeads: Int? = nil, ffnDim: Int,
                contextLength: Int, ropeTheta: Float = Defaults.ropeTheta, normEps: Float = Defaults.normEps,
                ropeScaling: RoPEScaling? = nil) {
        self.vocabSize = vocabSize
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads ?? heads
        self.ffnDim = ffnDim
        self.contextLength = contextLength
        self.ropeTheta = ropeTheta
        self.normEps = normEps
        self.ropeScaling = ropeScaling
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case vocabSize = "vocab_size"
        case dim = "hidden_size"
        case layers = "num_hidden_layers"
        case heads = "num_attention_heads"
        case kvHeads = "num_key_value_heads"
        case ffnDim = "intermediate_size"
        case contextLength = "max_position_embeddings"
        case ropeTheta = "rope_theta"
        case normEps = "rms_norm_eps"
        case ropeScaling = "rope_scaling"
    }

    /// The JSON keys this config reads; anything else in a config file is a mistake worth reporting.
    public static let keys: [String] = CodingKeys.allCases.map(\.rawValue)

    /// Absent optional keys take `Defaults`; an absent vocab_size is `vocabularyFromData`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let heads = try c.decode(Int.self, forKey: .heads)
        self.init(vocabSize: try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? Self.vocabularyFromData,
                  dim: try c.decode(Int.self, forKey: .dim), layers: try c.decode(Int.self, forKey: .layers), heads: heads,
                  kvHeads: try c.decodeIfPresent(Int.self, forKey: .kvHeads), ffnDim: try c.decode(Int.self, forKey: .ffnDim),
                  contextLength: try c.decode(Int.self, forKey: .contextLength),
                  ropeTheta: try c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? Defaults.ropeTheta,
                  normEps: try c.decodeIfPresent(Float.self, forKey: .normEps) ?? Defaults.normEps,
                  ropeScaling: try c.decodeIfPresent(RoPEScaling.self, forKey: .ropeScaling))
    }

    /// Every field; vocab_size only once it is known, so a config read without one reads back the same.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if vocabSize != Self.vocabularyFromData { try c.encode(vocabSize, forKey: .vocabSize) }
        try c.encode(dim, forKey: .dim)
        try c.encode(layers, forKey: .layers)
        try c.encode(heads, forKey: .heads)
        try c.encode(kvHeads, forKey: .kvHeads)
        try c.encode(ffnDim, forKey: .ffnDim)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(normEps, forKey: .normEps)
        try c.encodeIfPresent(ropeScaling, forKey: .ropeScaling)
    }

    public var headDim: Int { dim / heads }
    public var kvDim: Int { kvHeads * headDim }
    /// Width of the fused q|k|v projection output.
    public var qkvDim: Int { dim + 2 * kvDim }

    /// Rejects shapes the model cannot have, with the reason in one line.
    public func validate() throws {
        func need(_ ok: Bool, _ why: String) throws { if !ok { throw LTEError("invalid model config: \(why)") } }
        try need(vocabSize > 0, "vocab_size must be positive (got \(vocabSize))")
        try need(dim > 0 && layers > 0 && heads > 0 && ffnDim > 0 && contextLength > 0,
                 "hidden_size, num_hidden_layers, num_attention_heads, intermediate_size and max_position_embeddings must be positive")
        try need(dim % heads == 0, "hidden_size \(dim) is not divisible by num_attention_heads \(heads)")
        try need(headDim % 2 == 0, "head dimension \(headDim) must be even for rotary embeddings")
        try need(kvHeads > 0 && heads % kvHeads == 0, "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        try need(ropeTheta > 0 && normEps > 0, "rope_theta and rms_norm_eps must be positive")
        if let problem = ropeScaling?.problem { try need(false, "rope scaling: \(problem)") }
    }
}
