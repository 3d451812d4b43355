import Foundation

/// Row softmax kernels: causal attention probabilities and the cross-entropy of the language-model head.
public enum Softmax {
    /// In place over one row of n values: p = exp(x − max) / Σ exp(x − max).
    /// Returns log Σ exp(x), taken before normalising, for an exact cross-entropy.
    /// Four passes over the row (max, exp, sum, scale), each vectorized: the row is in L1, and a
    /// pass that carried the sum beside the exponentials would run one lane at a time.
    @inline(__always) @discardableResult
    public static func row(_ x: UnsafeMutablePointer<Float>, count n: Int) -> Float {
        let m = Vec.maximum(x, count: n)
        for j in 0..<n { x[j] = fastExp(x[j] - m) }
        let sum = Vec.total(x, count: n)
        let inv = 1 / sum
        for j in 0..<n { x[j] *= inv }
        return m + log(sum)
    }

    /// Causal attention probabilities over scores (T, T), in place: row t keeps columns 0…t
    /// (scaled by `scale` before the softmax), and the masked upper triangle becomes exactly 0.
    public static func causalForward(_ s: UnsafeMutablePointer<Float>, seqLen t: Int, scale: Float) {
        for i in 0..<t {
            let row = s + i * t
            for j in 0...i { row[j] *= scale }
            Self.row(row, count: i + 1)
            for j in (i + 1)..<t { row[j] = 0 }
        }
    }

    /// dS = scale · P ⊙ (dP − Σⱼ dPⱼ Pⱼ), row by row, in place over dP (T, T).
    /// Masked entries have P = 0, so their gradient is 0 without a special case.
    public static func causalBackward(p: UnsafePointer<Float>, dp: UnsafeMutablePointer<Float>, seqLen t: Int, scale: Float) {
        for i in 0..<t {
            let pr = p + i * t, dr = dp + i * t
            var dot: Float = 0
            for j in 0...i { dot += pr[j] * dr[j] }
            for j in 0...i { dr[j] = scale * pr[j] * (dr[j] - dot) }
            for j in (i + 1)..<t { dr[j] = 0 }
        }
    }
}

/// Softmax cross-entropy over the vocabulary, fused: the logits buffer becomes the gradient.
public enum CrossEntropy {
    /// logits (rows, vocab) → returns the mean loss over rows whose target is ≥ 0, and overwrites
    /// the logits with ∂loss/∂logits = (softmax − onehot) / count. Rows with target < 0 are ignored.
    public static func forwardBackward(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab v: Int) -> Float {
        var counted = 0
        for r in 0..<rows where targets[r] >= 0 { counted += 1 }
        guard counted > 0 else { return 0 }
        let inv = 1 / Float(counted)
        var total = 0.0
        for r in 0..<rows {
            let x = logits + r * v
            let target = Int(targets[r])
            if target < 0 { for j in 0..<v { x[j] = 0 }; continue }
            let picked = x[target]
            total += Double(Softmax.row(x, count: v) - picked)
            for j in 0..<v { x[j] *= inv }
            x[target] -= inv
        }
        return Float(total / Double(counted))
    }

    /// The mean loss only (evaluation); logits are overwritten with probabilities.
    public static func loss(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab v: Int) -> Float {
        var total = 0.0
        var counted = 0
        for r in 0..<rows where targets[r] >= 0 {
            let x = logits + r * v
            let picked = x[Int(targets[r])]
            total += Double(Softmax.row(x, count: v) - picked)
            counted += 1
        }
        return counted == 0 ? 0 : Float(total / Double(counted))
    }
}
