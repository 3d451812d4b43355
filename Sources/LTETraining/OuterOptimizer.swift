import LTEModel
import LTENumerics

/// DiLoCo's outer optimizer on LTE's merges (`lte.outer nesterov`): a round's merged delta
/// Δ = (s/N) Σᵢ (BᵢAᵢ − Vᵢ) is not added to W as it is but treated as a pseudo-gradient,
///
///     m ← μ·m + Δ
///     W ← W + η·(Δ + μ·m)          (Nesterov: the step looks ahead along the new momentum)
///
/// on every wrapped weight (the sites `LTEMerge.apply` writes). The replicated tensors (embeddings,
/// norms, an unwrapped lm_head) keep the plain average: see `MainWeights.mergeFactors` for why.
///
/// Determinism: `merge` is the only way a node moves W under this rule — the server, every worker
/// holding float32 W, the in-process run and replay all call it — and it is a fixed-order
/// elementwise loop over `LTEMerge`'s own fixed-order sum, so every node holds the same bits of W
/// and of m. m (the velocity; μ is the momentum) lives in a buffer the size of the model, used only
/// at the wrapped offsets: mapped lazily, the pages of the replicated tensors are never touched.
/// What it costs: two float32 copies of the wrapped weights (m and the round's Δ) wherever W is merged.
public final class OuterOptimizer {
    public let learningRate: Float
    public let momentum: Float
    /// m, at the `ParameterLayout` offsets of the weights it moves.
    public let velocity: FloatBuffer
    /// Where a round's Δ is summed before the step (zeroed first), at the same offsets.
    private let delta: FloatBuffer
    /// (offset, count) of every wrapped weight the step moves: the `LoRALayout`'s sites.
    public let spans: [(offset: Int, count: Int)]

    public init(learningRate: Float, momentum: Float, parameterCount: Int, layout: LoRALayout) {
        self.learningRate = learningRate
        self.momentum = momentum
        spans = layout.sites.map { ($0.weight, $0.outFeatures * $0.inFeatures) }
        velocity = FloatBuffer(count: parameterCount, lazily: true)   // zero: m₀ = 0
        delta = FloatBuffer(count: parameterCount, lazily: true)
    }

    /// The optimizer of `lora`'s `outer` rule, or nil for `none`.
    public convenience init?(_ lora: LoRAConfig, parameterCount: Int, layout: LoRALayout) {
        guard lora.outer == .nesterov else { return nil }
        self.init(learningRate: lora.outerLearningRate, momentum: lora.outerMomentum, parameterCount: parameterCount, layout: layout)
    }

    /// One round: `sumDelta` adds the round's Δ into the zeroed buffer it is given (at W's offsets;
    /// `LTEMerge.apply` does exactly that), then m and W take the step above.
    public func merge(into weights: FloatBuffer, sumDelta: (FloatBuffer) -> Void) {
        for (o, n) in spans { (delta.pointer + o).update(repeating: 0, count: n) }
        sumDelta(delta)
        let eta = learningRate, mu = momentum
        withExtendedLifetime((weights, delta, velocity)) {
            let w = weights.pointer, d = delta.pointer, m = velocity.pointer
            for (o, n) in spans {
                for i in o..<(o + n) {
                    let g = d[i]
                    let v = mu * m[i] + g
                    m[i] = v
                    w[i] = w[i] + eta * (g + mu * v)
                }
            }
        }
    }

    /// Sets m from `values` laid out like the weights (a server resuming, a worker joining, replay
    /// starting from a snapshot).
    public func setVelocity(from values: UnsafePointer<Float>) {
        for (o, n) in spans { (velocity.pointer + o).update(from: values + o, count: n) }
    }

    /// m at the wrapped offsets, packed in span order (what a joining worker is sent).
    public func packedVelocity() -> FloatBuffer {
        let out = FloatBuffer(count: spans.reduce(0) { $0 + $1.count })
        var i = 0
        for (o, n) in spans { (out.pointer + i).update(from: velocity.pointer + o, count: n); i += n }
        return out
    }

    /// The inverse of `packedVelocity`.
    public func unpackVelocity(_ packed: UnsafePointer<Float>) {
        var i = 0
        for (o, n) in spans { (velocity.pointer + o).update(from: packed + i, count: n); i += n }
    }

    public var packedCount: Int { spans.reduce(0) { $0 + $1.count } }
}
