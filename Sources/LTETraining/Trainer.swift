import LTEData
import LTEModel
import LTENumerics

/// One training process's view of a run, whatever the mode: a step, a validation loss, counters.
/// The loop that logs, evaluates and checkpoints (`TrainingLoop`) drives any of these.
public protocol TrainingRun: AnyObject {
    /// One optimizer step (for LTE: one local step of every head, plus the merge when it is due).
    /// Returns the mean training loss of the step's batches.
    func trainStep(iteration: Int) -> Float
    func validationLoss() -> Float
    /// Cumulative tokens seen by all heads / replicas (DESIGN.md §2 accounting).
    var tokensSeen: Int { get }
    /// Cumulative bytes that cross (or would cross) the network, both directions.
    var bytesCommunicated: Int { get }
    var learningRate: Float { get }
}

/// Full-rank training of one model on one stream of batches: the baseline every mode is compared to.
public final class Trainer<Source: BatchSource>: TrainingRun {
    public let model: Transformer
    public let optimizer: AdamW
    public let config: TrainingConfig
    public var source: Source
    let validation: () -> any BatchSource
    let acts: Activations
    let inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
    /// Set by the caller when a run resumes from a checkpoint.
    public var tokensSeen = 0
    public let bytesCommunicated = 0
    public private(set) var learningRate: Float = 0
    public private(set) var lastGradNorm: Float = 0

    /// `validation` makes a fresh, identically seeded source of validation batches for each evaluation
    /// (e.g. `{ evaluationBatches.source() }`); it may be of another type than the training source.
    public init(model: Transformer, config: TrainingConfig, source: Source, validation: @escaping () -> any BatchSource) {
        self.model = model
        self.config = config
        self.source = source
        self.validation = validation
        optimizer = AdamW(model: model, config: config)
        acts = Activations(config: model.config, batch: source.batchSize, seqLen: source.contextLength,
                           recomputesBlocks: config.recompute == .blocks)
        inputs = .allocate(capacity: acts.rows)
        targets = .allocate(capacity: acts.rows)
    }

    deinit { inputs.deallocate(); targets.deallocate() }

    public func trainStep(iteration: Int) -> Float {
        learningRate = config.schedule.rate(at: iteration)
        source.next(inputs: inputs, targets: targets)
        model.zeroGrad()
        let loss = model.forward(acts, tokens: inputs, targets: targets)
        model.backward(acts)
        lastGradNorm = clipGradientNorm([model.grads], maxNorm: config.gradClip)
        optimizer.update(params: model.params.pointer, grads: model.grads.pointer, lr: learningRate)
        tokensSeen += acts.rows
        return loss
    }

    public func validationLoss() -> Float {
        evaluate(model, acts: acts, source: validation(), batches: config.evalIterations, inputs: inputs, targets: targets)
    }
}

/// Mean loss of `model` over `batches` batches drawn from `source`.
public func evaluate<S: BatchSource>(_ model: Transformer, acts: Activations, source: S, batches: Int,
                                     inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>) -> Float {
    var source = source
    var total = 0.0
    for _ in 0..<max(1, batches) {
        source.next(inputs: inputs, targets: targets)
        total += Double(model.forward(acts, tokens: inputs, targets: targets, forTraining: false))
    }
    return Float(total / Double(max(1, batches)))
}
