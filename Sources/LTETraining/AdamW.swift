import LTENumerics

/// AdamW over one contiguous parameter buffer, with its two moment buffers.
///
/// Weight decay applies to matrices only (embeddings and projections), not to norm gains, as in
/// nanoGPT; `decayed` lists the [offset, offset+count) spans that decay.
public final class AdamW {
    public let m: FloatBuffer, v: FloatBuffer
    public var step = 0
    public let decayed: [Range<Int>]
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float

    public init(count: Int, decayed: [Range<Int>], beta1: Float = 0.9, beta2: Float = 0.99, epsilon: Float = 1e-8, weightDecay: Float = 0.1) {
        m = FloatBuffer(count: count)
        v = FloatBuffer(count: count)
        self.decayed = decayed.sorted { $0.lowerBound < $1.lowerBound }
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
    }

    public convenience init(count: Int, decayed: [Range<Int>], config t: TrainingConfig) {
        self.init(count: count, decayed: decayed, beta1: t.beta1, beta2: t.beta2, epsilon: t.epsilon, weightDecay: t.weightDecay)
    }

    /// One update of `params` from `grads` at learning rate `lr`.
    public func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, lr: Float) {
        step += 1
        var start = 0
        func run(_ r: Range<Int>, decay: Float) {
            guard !r.isEmpty else { return }
            AdamWKernel.step(param: params + r.lowerBound, grad: grads + r.lowerBound, m: m.pointer + r.lowerBound,
                             v: v.pointer + r.lowerBound, count: r.count, lr: lr, beta1: beta1, beta2: beta2,
                             eps: epsilon, weightDecay: decay, step: step)
        }
        for r in decayed {
            run(start..<r.lowerBound, decay: 0)
            run(r, decay: weightDecay)
            start = r.upperBound
        }
        run(start..<m.count, decay: 0)
    }
}

/// Scales gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ g: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float) -> Float {
    let norm = Float(Vec.sumOfSquares(g, count: count).squareRoot())
    if maxNorm > 0, norm > maxNorm { Vec.scale(g, by: maxNorm / (norm + 1e-6), count: count) }
    return norm
}
