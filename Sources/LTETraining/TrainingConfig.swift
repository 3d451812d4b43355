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
    }

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(maxRate: learningRate, minRate: minLearningRate, warmup: warmupIterations,
                             decayEnd: decayIterations ?? iterations)
    }
}
