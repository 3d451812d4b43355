import LTEBase

/// Optimisation hyperparameters of a run, named as in the config files' "training" section.
/// Defaults are nanoGPT's for its small character-level models.
public struct TrainingConfig: Codable, Equatable, Sendable {
    public var batchSize = 12
    public var iterations = 2000
    public var learningRate: Float = 1e-3
    public var minLearningRate: Float = 1e-4
    public var warmupIterations = 100
    /// Cosine decay reaches `minLearningRate` here (nanoGPT's lr_decay_iters); defaults to `iterations`.
    public var decayIterations: Int?
    public var weightDecay: Float = 0.1
    public var beta1: Float = 0.9
    public var beta2: Float = 0.99
    public var epsilon: Float = 1e-8
    public var gradClip: Float = 1.0
    public var evalInterval = 250
    public var evalIterations = 200
    public var logInterval = 10
    public var checkpointInterval = 500
    public var seed: UInt64 = 1337
    public var threads = 1
    /// What the backward pass recomputes instead of keeping: `none`, or `blocks` (only each block's
    /// input is kept; its intermediates are computed again, the same bits, before its backward).
    public var recompute = Recompute.none

    public enum Recompute: String, Codable, Sendable, CaseIterable {
        case none, blocks
    }

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case batchSize = "batch_size", iterations, learningRate = "learning_rate", minLearningRate = "min_learning_rate"
        case warmupIterations = "warmup_iterations", decayIterations = "decay_iterations", weightDecay = "weight_decay"
        case beta1, beta2, epsilon, gradClip = "grad_clip", evalInterval = "eval_interval", evalIterations = "eval_iterations"
        case logInterval = "log_interval", checkpointInterval = "checkpoint_interval", seed, threads, recompute
    }

    public static let keys: [String] = CodingKeys.allCases.map(\.rawValue)

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = TrainingConfig()
        batchSize = try v(.batchSize, d.batchSize)
        iterations = try v(.iterations, d.iterations)
        learningRate = try v(.learningRate, d.learningRate)
        minLearningRate = try v(.minLearningRate, d.minLearningRate)
        warmupIterations = try v(.warmupIterations, d.warmupIterations)
        decayIterations = try c.decodeIfPresent(Int.self, forKey: .decayIterations)
        weightDecay = try v(.weightDecay, d.weightDecay)
        beta1 = try v(.beta1, d.beta1)
        beta2 = try v(.beta2, d.beta2)
        epsilon = try v(.epsilon, d.epsilon)
        gradClip = try v(.gradClip, d.gradClip)
        evalInterval = try v(.evalInterval, d.evalInterval)
        evalIterations = try v(.evalIterations, d.evalIterations)
        logInterval = try v(.logInterval, d.logInterval)
        checkpointInterval = try v(.checkpointInterval, d.checkpointInterval)
        seed = try v(.seed, d.seed)
        threads = try v(.threads, d.threads)
        if let r = try c.decodeIfPresent(String.self, forKey: .recompute) {
            guard let value = Recompute(rawValue: r) else {
                throw LTEError("training.recompute must be one of \(Recompute.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(r)\")")
            }
            recompute = value
        }
    }

    /// Rejects settings no run can take, with the reason in one line.
    public func validate() throws {
        guard threads >= 1 else { throw LTEError("training.threads must be at least 1") }
        guard iterations >= 1, batchSize >= 1 else { throw LTEError("training.iterations and training.batch_size must be at least 1") }
        guard learningRate > 0, learningRate.isFinite else { throw LTEError("training.learning_rate must be positive (got \(learningRate))") }
        guard minLearningRate >= 0, minLearningRate.isFinite else {
            throw LTEError("training.min_learning_rate must be zero or positive (got \(minLearningRate))")
        }
        // The cosine decays from learning_rate down to min_learning_rate: upside down, it would climb.
        guard minLearningRate <= learningRate else {
            throw LTEError("training.min_learning_rate \(minLearningRate) is above training.learning_rate \(learningRate); the schedule decays from the second to the first")
        }
        for (name, beta) in [("beta1", beta1), ("beta2", beta2)] where !(beta >= 0 && beta < 1) {
            throw LTEError("training.\(name) must be in [0, 1) (got \(beta))")
        }
        // AdamW divides by sqrt(v) + epsilon: at 0 a parameter with no gradient yet divides 0 by 0.
        guard epsilon > 0, epsilon.isFinite else { throw LTEError("training.epsilon must be positive, e.g. 1e-8 (got \(epsilon))") }
        for (name, value) in [("weight_decay", weightDecay), ("grad_clip", gradClip)] where !(value >= 0 && value.isFinite) {
            throw LTEError("training.\(name) must be zero or positive (got \(value))")
        }
        for (name, value) in [("warmup_iterations", warmupIterations), ("eval_interval", evalInterval), ("eval_iterations", evalIterations),
                              ("log_interval", logInterval), ("checkpoint_interval", checkpointInterval)] where value < 0 {
            throw LTEError("training.\(name) must be zero or positive (got \(value))")
        }
        if let decayIterations, decayIterations < 1 { throw LTEError("training.decay_iterations must be at least 1 (got \(decayIterations))") }
        // eval_interval 0 turns evaluation off; on, it must look at something, or "val loss" means nothing.
        guard evalInterval == 0 || evalIterations >= 1 else {
            throw LTEError("training.eval_iterations must be at least 1 while evaluation is on (training.eval_interval \(evalInterval)); set training.eval_interval=0 to turn it off")
        }
    }

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(maxRate: learningRate, minRate: minLearningRate, warmup: warmupIterations,
                             decayEnd: decayIterations ?? iterations)
    }
}
