import LTEModel
import LTENumerics

/// AdamW over a parameter buffer, driven by a gradient buffer and holding its two moments.
///
/// A `Span` ties a run of parameters to its gradients (they differ when frozen weights have no
/// gradient slot); moments are laid out like the gradients. Weight decay applies to matrices only
/// (embeddings and projections), not to norm gains, as in nanoGPT.
public final class AdamW {
    public struct Span: Sendable {
        public let param: Int, grad: Int, count: Int, decay: Bool
        public init(param: Int, grad: Int, count: Int, decay: Bool) {
            self.param = param; self.grad = grad; self.count = count; self.decay = decay
        }
    }

    public let m: FloatBuffer, v: FloatBuffer
    public var step = 0
    public let spans: [Span]
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float

    public init(spans: [Span], config t: TrainingConfig) {
        let count = spans.map { $0.grad + $0.count }.max() ?? 0
        m = FloatBuffer(count: count)
        v = FloatBuffer(count: count)
        self.spans = spans
        beta1 = t.beta1; beta2 = t.beta2; epsilon = t.epsilon; weightDecay = t.weightDecay
    }

    /// One span per trainable tensor of a model: parameters by `layout`, gradients by `gradLayout`.
    public convenience init(model: Transformer, config t: TrainingConfig) {
        let spans = zip(model.layout.tensors, model.layout.tensors.map { model.gradLayout.tensor(named: $0.name) })
            .compactMap { p, g in g.map { Span(param: p.offset, grad: $0.offset, count: p.count, decay: p.shape.count == 2) } }
        self.init(spans: spans, config: t)
    }

    /// One update of `params` from `grads` at learning rate `lr`.
    public func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, lr: Float) {
        step += 1
        for s in spans {
            AdamWKernel.step(param: params + s.param, grad: grads + s.grad, m: m.pointer + s.grad, v: v.pointer + s.grad,
                             count: s.count, lr: lr, beta1: beta1, beta2: beta2, eps: epsilon,
                             weightDecay: s.decay ? weightDecay : 0, step: step)
        }
    }
}

/// Scales gradients so their global L2 norm, taken over all `buffers` together, is at most
/// `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ buffers: [FloatBuffer], maxNorm: Float) -> Float {
    let norm = Float(buffers.reduce(0.0) { $0 + Vec.sumOfSquares($1.pointer, count: $1.count) }.squareRoot())
    if maxNorm > 0, norm > maxNorm {
        for b in buffers { Vec.scale(b.pointer, by: maxNorm / (norm + 1e-6), count: b.count) }
    }
    return norm
}
