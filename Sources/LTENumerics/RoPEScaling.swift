import Foundation

/// LLaMA 3.1's rewrite of the rotary frequencies (`rope_type: "llama3"`), as `transformers` applies
/// it in `_compute_llama3_parameters`: wavelengths shorter than original/high_freq_factor keep their
/// frequency, those longer than original/low_freq_factor are slowed by `factor`, and the band between
/// blends the two linearly in original/wavelength. Only the frequencies change (no attention factor),
/// so the rotation itself, forward and backward, stays `RoPE.rotate`.
///
/// Coding keys are the Hugging Face names, so the same struct is `rope_parameters`' (and the older
/// `rope_scaling`'s) content in a config.json.
public struct RoPEScaling: Codable, Equatable, Sendable {
    /// Always "llama3": the only scaling this decoder implements; a config naming another is refused
    /// where it is read.
    public var ropeType: String
    public var factor: Float
    public var lowFreqFactor: Float
    public var highFreqFactor: Float
    public var originalMaxPositionEmbeddings: Int

    public static let llama3 = "llama3"

    public init(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositionEmbeddings: Int) {
        ropeType = Self.llama3
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type"
        case factor
        case lowFreqFactor = "low_freq_factor"
        case highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
    }

    /// Why the parameters cannot describe a llama3 scaling, or nil when they do.
    public var problem: String? {
        if ropeType != Self.llama3 { return "rope_type \"\(ropeType)\" is not supported (only \"llama3\")" }
        if !(factor > 0) { return "factor must be positive (got \(factor))" }
        if !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) {
            return "high_freq_factor (\(highFreqFactor)) must exceed low_freq_factor (\(lowFreqFactor)) > 0"
        }
        if originalMaxPositionEmbeddings <= 0 { return "original_max_position_embeddings must be positive" }
        return nil
    }

    /// The rescaled inverse frequency, in float32 like transformers' tensors.
    public func rescale(_ invFreq: Float) -> Float {
        let original = Float(originalMaxPositionEmbeddings)
        let lowFreqWavelen = original / lowFreqFactor, highFreqWavelen = original / highFreqFactor
        let wavelen = 2 * Float.pi / invFreq
        if wavelen < highFreqWavelen { return invFreq }
        if wavelen > lowFreqWavelen { return invFreq / factor }
        let smooth = (original / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
        return (1 - smooth) * invFreq / factor + smooth * invFreq
    }
}
