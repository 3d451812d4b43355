import LTEBase
import LTENumerics

/// The low-rank parameterisation of LTE (DESIGN.md §2): every linear layer W (m×n) gets, per head,
/// A (r×n) and B (m×r) with scale s = α/r; the config file's "lte" section.
public struct LoRAConfig: Codable, Equatable, Sendable {
    public enum MergeRule: String, Codable, Sendable {
        /// W ← W + (s/N) Σ (BᵢAᵢ − Vᵢ); Vᵢ ← BᵢAᵢ. Keeps A, B and the optimizer state (the default).
        case resetless
        /// W ← W + (s/N) Σ BᵢAᵢ; Bᵢ ← 0 (Algorithm 1 of the paper).
        case resetB = "reset-b"
    }

    /// How A's orthonormal rows are scaled at initialisation.
    public enum AInit: String, Codable, Sendable {
        /// × √(n/r), as the official code does.
        case official
        /// × √(r/n), as the paper's text says.
        case paper
    }

    public var heads = 8
    public var rank = 16
    public var alpha: Float = 4096
    public var mergeEvery = 10
    public var merge = MergeRule.resetless
    public var wrapLMHead = false
    public var aInit = AInit.official
    /// AdamW weight decay on A and B (replicated parameters use the training section's).
    public var weightDecay: Float = 0
    /// LTE learning rate (of A and B); nil uses the training section's. A run config that leaves
    /// it out gets one derived from the training section's and s (`RunConfig+Defaults`), as it does
    /// the rank and the replicated learning rate; `LoRAConfig()` itself keeps plain defaults.
    public var learningRate: Float?
    /// Learning rate of the tensors every head trains in full and each round averages (embeddings,
    /// norms, an unwrapped lm_head) in the adapter modes; nil uses the training section's. Dense
    /// replicas (fedavg) always train at the training section's.
    public var replicatedLearningRate: Float?
    /// How the heads hold the frozen (wrapped) weights they compute against: float32, or quantized
    /// (int8, nf4) and dequantized a layer at a time. The master weights stay float32 either way.
    public var frozenWeights = QuantizedFormat.f32
    /// How a head's factors cross the wire at a round, both ways (DESIGN.md §8): the server merges,
    /// records and sends back exactly the dequantized values of what was pushed, and every node, the
    /// in-process run and replay merge those same values. Replicated tensors always go as float32:
    /// they are full values, not deltas, so bf16 would round away a round's small updates.
    public var pushFormat = QuantizedFormat.f32
    /// Merges overlapped with training: after pushing round k a worker trains round k + 1 on the
    /// weights it has and applies merge k at the end of those steps, before its next push. Needs the
    /// reset-less rule (reset-B would zero a B that has trained on since its push).
    public var overlap = false
    /// With `lte.overlap`, how much of the others' progress in the round whose merge is in flight a
    /// head takes to be like its own, c ∈ [0, 1]: until merge k is applied it counts its own round-k
    /// progress at ω = 1/N + c·(1 − 1/N) (LoRAHead.awaitMerge). c = 0 is exactly the share the merge
    /// gives it; c = 1 counts it whole, standing in for every head's. Measured on experiments/compare's
    /// lte row at a quarter budget (N = 4): c = 1/3 ended closest to the rounds without overlap (README).
    public var overlapExtrapolation: Float = 1.0 / 3.0
    /// The outer optimizer on merges (DiLoCo's): `none` adds each round's merged delta to W as it
    /// is; `nesterov` treats it as a pseudo-gradient with momentum (`OuterOptimizer`).
    public var outer = OuterRule.none
    /// η of the outer step: W ← W + η·(Δ + μ·m).
    public var outerLearningRate: Float = 0.7
    /// μ of the outer step: m ← μ·m + Δ. Not DiLoCo's 0.9: on experiments/compare's lte row (T = 10,
    /// 300 steps) μ = 0.9 ended 3 % above the plain merge, μ = 0.6 1.2 % below it (README).
    public var outerMomentum: Float = 0.6

    /// What a round does with its merged delta Δ (`lte.outer`).
    public enum OuterRule: String, Codable, Sendable, CaseIterable {
        /// W ← W + Δ: the plain merge.
        case none
        /// m ← μ·m + Δ; W ← W + η·(Δ + μ·m): Nesterov momentum on the merged delta.
        case nesterov
    }

    public init() {}

    public var scale: Float { alpha / Float(rank) }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case heads, rank, alpha, mergeEvery = "merge_every", merge, wrapLMHead = "wrap_lm_head", aInit = "a_init"
        case weightDecay = "weight_decay", learningRate = "learning_rate", replicatedLearningRate = "replicated_learning_rate"
        case frozenWeights = "frozen_weights"
        case pushFormat = "push_format", overlap, overlapExtrapolation = "overlap_extrapolation"
        case outer, outerLearningRate = "outer_learning_rate", outerMomentum = "outer_momentum"
    }

    public static let keys: [String] = CodingKeys.allCases.map(\.rawValue)

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LoRAConfig()
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
        rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? d.rank
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha) ?? d.alpha
        mergeEvery = try c.decodeIfPresent(Int.self, forKey: .mergeEvery) ?? d.mergeEvery
        merge = try c.decodeIfPresent(MergeRule.self, forKey: .merge) ?? d.merge
        wrapLMHead = try c.decodeIfPresent(Bool.self, forKey: .wrapLMHead) ?? d.wrapLMHead
        aInit = try c.decodeIfPresent(AInit.self, forKey: .aInit) ?? d.aInit
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate)
        replicatedLearningRate = try c.decodeIfPresent(Float.self, forKey: .replicatedLearningRate)
        if let f = try c.decodeIfPresent(String.self, forKey: .frozenWeights) {
            // bf16 is a push format only: frozen weights are f32 or quantized on blocks.
            guard let format = QuantizedFormat(rawValue: f), format != .bf16 else {
                throw LTEError("lte.frozen_weights must be one of f32, int8, nf4 (got \"\(f)\")")
            }
            frozenWeights = format
        }
        // Parsed by hand so a bad value is refused with the choices, not as a decoding error.
        if let text = try? c.decodeIfPresent(String.self, forKey: .pushFormat) {
            pushFormat = try QuantizedFormat(parsing: text, key: "lte.push_format")
        } else if c.contains(.pushFormat) {
            throw LTEError("lte.push_format must be one of \(QuantizedFormat.choices) (a string)")
        }
        if c.contains(.overlap) {
            guard let flag = try? c.decode(Bool.self, forKey: .overlap) else { throw LTEError("lte.overlap must be one of true, false") }
            overlap = flag
        }
        if c.contains(.outer) {
            let choices = OuterRule.allCases.map(\.rawValue).joined(separator: ", ")
            guard let text = try? c.decode(String.self, forKey: .outer), let rule = OuterRule(rawValue: text) else {
                let got = (try? c.decode(String.self, forKey: .outer)).map { " (got \"\($0)\")" } ?? ""
                throw LTEError("lte.outer must be one of \(choices)\(got)")
            }
            outer = rule
        }
        overlapExtrapolation = try c.decodeIfPresent(Float.self, forKey: .overlapExtrapolation) ?? d.overlapExtrapolation
        outerLearningRate = try c.decodeIfPresent(Float.self, forKey: .outerLearningRate) ?? d.outerLearningRate
        outerMomentum = try c.decodeIfPresent(Float.self, forKey: .outerMomentum) ?? d.outerMomentum
    }

    /// Also checks the rank against the layers it wraps: A's r rows must be orthonormal in R^n.
    public func validate(for model: ModelConfig) throws {
        try validate()
        let narrowest = min(model.dim, model.ffnDim)
        guard rank <= narrowest else {
            throw LTEError("lte.rank \(rank) exceeds the narrowest wrapped layer's input width \(narrowest)")
        }
    }

    public func validate() throws {
        guard heads >= 1 else { throw LTEError("lte.heads must be at least 1 (got \(heads))") }
        guard rank >= 1 else { throw LTEError("lte.rank must be at least 1 (got \(rank))") }
        guard mergeEvery >= 1 else { throw LTEError("lte.merge_every must be at least 1 (got \(mergeEvery))") }
        guard alpha > 0, alpha.isFinite else { throw LTEError("lte.alpha must be positive (got \(alpha))") }
        for (name, rate) in [("learning_rate", learningRate), ("replicated_learning_rate", replicatedLearningRate)] {
            if let rate, !(rate > 0 && rate.isFinite) { throw LTEError("lte.\(name) must be positive (got \(rate))") }
        }
        guard !overlap || merge == .resetless else {
            throw LTEError("lte.overlap needs lte.merge resetless: reset-B would zero a B that trained on after its push")
        }
        guard overlapExtrapolation >= 0, overlapExtrapolation <= 1 else {
            throw LTEError("lte.overlap_extrapolation must be in [0, 1] (got \(overlapExtrapolation))")
        }
        guard outerLearningRate > 0, outerLearningRate <= 10, outerLearningRate.isFinite else {
            throw LTEError("lte.outer_learning_rate must be in (0, 10] (got \(outerLearningRate))")
        }
        guard outerMomentum >= 0, outerMomentum < 1 else {
            throw LTEError("lte.outer_momentum must be in [0, 1) (got \(outerMomentum))")
        }
    }
}
