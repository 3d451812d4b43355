import LTEData
import LTEModel
import LTENumerics

/// What trains one head (or one dense replica): a copy of the main weights, the head's low-rank
/// factors when adapters are used, its own AdamW(s), its own data shard and preallocated buffers.
/// The in-process trainer holds N of these; a worker process holds the ones for its heads.
public final class HeadReplica<Source: BatchSource> {
    public let id: Int
    public let model: Transformer
    public let head: LoRAHead?
    let optimizer: AdamW
    let headOptimizer: AdamW?
    /// The adapters' learning rate relative to the schedule's (lte.learning_rate / training lr).
    let headRateFactor: Float
    /// The replicated tensors' learning rate relative to the schedule's (lte.replicated_learning_rate
    /// / training lr; 1 for dense replicas).
    let replicatedRateFactor: Float
    let gradClip: Float
    public var source: Source
    let acts: Activations
    /// Offsets and sizes of the tensors this replica copies from the main weights.
    let copied: [(offset: Int, count: Int)]
    let inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>

    /// A replica of `main`: with adapters (`main.lora`) it trains a head on the frozen wrapped
    /// weights (no gradient slot), else the dense model. It copies the tensors each round averages
    /// (`main.replicatedSpans`); the wrapped weights are frozen between merges, so they are read from
    /// `frozenSource` (the main weights, or a lane's LayerFold holding the head's effective
    /// weight, HeadLanes) rather than copied: a process holds W once per lane at most, however many
    /// heads it trains. `activations` may be shared by replicas that step one at a time.
    public init(id: Int, main: MainWeights, training: TrainingConfig, source: Source, activations: Activations? = nil,
                frozenSource: (any FrozenWeights)? = nil) throws {
        self.id = id
        let config = main.model.config, weights = main.model.params
        let frozen = main.layout?.wrappedTensorNames ?? []
        model = try Transformer(config: config, trainable: { !frozen.contains($0.name) },
                                frozenSource: frozen.isEmpty ? nil : frozenSource ?? weights)
        copied = main.replicatedSpans
        for (offset, count) in copied { (model.params.pointer + offset).update(from: weights.pointer + offset, count: count) }
        optimizer = AdamW(model: model, config: training)
        if let lora = main.lora, let layout = main.layout {
            let h = LoRAHead(layout: layout, scale: lora.scale)
            h.initialize(seed: training.seed, head: id, aInit: lora.aInit)
            model.adapters = h
            head = h
            var t = training
            t.weightDecay = lora.weightDecay
            headOptimizer = AdamW(spans: [.init(param: 0, grad: 0, count: layout.count, decay: true)], config: t)
            headRateFactor = (lora.learningRate ?? training.learningRate) / training.learningRate
            replicatedRateFactor = (lora.replicatedLearningRate ?? training.learningRate) / training.learningRate
        } else {
            head = nil; headOptimizer = nil; headRateFactor = 1; replicatedRateFactor = 1
        }
        gradClip = training.gradClip
        self.source = source
        if let a = activations {
            precondition(a.batch == source.batchSize && a.seqLen == source.contextLength, "shared activations of another batch shape")
            acts = a
        } else {
            acts = Activations(config: config, batch: source.batchSize, seqLen: source.contextLength)
        }
        head?.prepare(rows: acts.rows)
        inputs = .allocate(capacity: acts.rows)
        targets = .allocate(capacity: acts.rows)
    }

    deinit { inputs.deallocate(); targets.deallocate() }

    public var tokensPerStep: Int { acts.rows }

    /// Takes the main weights after a round: copies the tensors this replica trains (the frozen ones
    /// it reads in place, and a lane refolds them before every step).
    public func adopt(_ weights: FloatBuffer) {
        for (offset, count) in copied { (model.params.pointer + offset).update(from: weights.pointer + offset, count: count) }
    }

    /// Takes the main weights after a merge this replica pushed to one round before (`lte.overlap`):
    /// each replicated value becomes the merged mean plus the replica's own progress since its push,
    /// m + (p − pushed), so the steps it trained while the merge was in flight are kept and reach
    /// the next mean. `pushed` is what it pushed, packed (`MainWeights.packReplicated`).
    public func adopt(_ weights: FloatBuffer, keepingProgressSince pushed: FloatBuffer) {
        var i = 0
        for (offset, count) in copied {
            let p = model.params.pointer + offset, m = weights.pointer + offset, q = pushed.pointer + i
            for j in 0..<count { p[j] = m[j] + (p[j] - q[j]) }
            i += count
        }
    }

    /// One local step at learning rate `lr`: next batch, forward, backward, clip, AdamW. Returns the loss.
    public func step(lr: Float) -> Float {
        source.next(inputs: inputs, targets: targets)
        model.zeroGrad()
        head?.grads.zero()
        let loss = model.forward(acts, tokens: inputs, targets: targets)
        model.backward(acts)
        // Global-norm clipping over everything the replica trains: its factors and replicated tensors.
        clipGradientNorm(head.map { [model.grads, $0.grads] } ?? [model.grads], maxNorm: gradClip)
        optimizer.update(params: model.params.pointer, grads: model.grads.pointer, lr: lr * replicatedRateFactor)
        if let h = head, let o = headOptimizer {
            o.update(params: h.factors.pointer, grads: h.grads.pointer, lr: lr * headRateFactor)
        }
        return loss
    }
}
