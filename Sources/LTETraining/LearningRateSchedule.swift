import Foundation

/// Linear warmup, then cosine decay to a floor (nanoGPT's `get_lr`), the same for every mode so
/// comparisons between full-rank, LoRA and LTE runs are like for like.
public struct LearningRateSchedule: Sendable, Equatable {
    public let maxRate: Float, minRate: Float, warmup: Int, decayEnd: Int

    public init(maxRate: Float, minRate: Float, warmup: Int, decayEnd: Int) {
        self.maxRate = maxRate; self.minRate = minRate; self.warmup = warmup; self.decayEnd = decayEnd
    }

    /// The rate for step `it` (0-based).
    public func rate(at it: Int) -> Float {
        if it < warmup { return maxRate * Float(it + 1) / Float(warmup + 1) }
        if it >= decayEnd { return minRate }
        let progress = Double(it - warmup) / Double(max(1, decayEnd - warmup))
        let coefficient = 0.5 * (1 + cos(Double.pi * progress))
        return minRate + Float(coefficient) * (maxRate - minRate)
    }
}
