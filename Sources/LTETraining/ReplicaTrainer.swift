import LTEModel
import LTENumerics

/// Trains N replicas of the model in one process and brings them together every T steps: the
/// in-process form of LTE and of its baselines (see `TrainingMode`).
///
/// `main` is what a parameter server would hold: W and the averaged replicated parameters as of the
/// last merge. Each replica is what a worker would hold for one head: a copy of `main`'s weights,
/// its own low-rank factors (adapter modes), its own AdamW and its own data shard. A replica's
/// frozen W gets no gradient buffer.
public final class ReplicaTrainer<Source: BatchSource>: TrainingRun {
    public final class Replica {
        public let model: Transformer
        public let head: LoRAHead?
        let optimizer: AdamW
        let headOptimizer: AdamW?
        var source: Source
        let acts: Activations
        let inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>

        init(model: Transformer, head: LoRAHead?, optimizer: AdamW, headOptimizer: AdamW?, source: Source) {
            self.model = model; self.head = head; self.optimizer = optimizer; self.headOptimizer = headOptimizer
            self.source = source
            acts = Activations(config: model.config, batch: source.batchSize, seqLen: source.contextLength)
            head?.prepare(rows: acts.rows)
            inputs = .allocate(capacity: acts.rows)
            targets = .allocate(capacity: acts.rows)
        }

        deinit { inputs.deallocate(); targets.deallocate() }
    }

    public let mode: TrainingMode
    public let main: Transformer
    public let replicas: [Replica]
    public let config: TrainingConfig
    public let lora: LoRAConfig
    public let syncEvery: Int?
    let validation: () -> any BatchSource
    let evalActs: Activations
    let evalInputs: UnsafeMutablePointer<Int32>, evalTargets: UnsafeMutablePointer<Int32>
    /// Spans (offset, count) of the parameters every replica trains and the merge averages.
    let replicatedSpans: [(offset: Int, count: Int)]
    public private(set) var tokensSeen = 0
    public private(set) var bytesCommunicated = 0
    public private(set) var learningRate: Float = 0
    public private(set) var merges = 0

    /// `makeSource(i)` gives replica i its batches (its own shard); `validation()` a fresh,
    /// identically seeded source of validation batches.
    public init(mode: TrainingMode, model: ModelConfig, config: TrainingConfig, lora: LoRAConfig,
                makeSource: (Int) throws -> Source, validation: @escaping () -> any BatchSource) throws {
        guard mode != .full else { throw LTEError("ReplicaTrainer runs the replicated modes; use Trainer for --mode full") }
        try lora.validate()
        self.mode = mode
        self.config = config
        self.lora = lora
        self.validation = validation
        syncEvery = mode.syncInterval(mergeEvery: lora.mergeEvery)
        main = try Transformer(config: model)
        main.initialize(seed: config.seed)
        let loraLayout = mode.usesAdapters ? LoRALayout(model: model, layout: main.layout, rank: lora.rank, wrapLMHead: lora.wrapLMHead) : nil
        let frozen = loraLayout?.wrappedTensorNames ?? []
        replicatedSpans = main.layout.tensors.filter { !frozen.contains($0.name) }.map { ($0.offset, $0.count) }

        var replicas: [Replica] = []
        for i in 0..<mode.replicaCount(lora.heads) {
            let m = try Transformer(config: model, trainable: { !frozen.contains($0.name) })
            m.params.copy(from: main.params)
            var head: LoRAHead?
            var headOptimizer: AdamW?
            if let loraLayout {
                let h = LoRAHead(layout: loraLayout, scale: lora.scale)
                h.initialize(seed: config.seed, head: i, aInit: lora.aInit)
                m.adapters = h
                head = h
                var t = config
                t.weightDecay = lora.weightDecay
                headOptimizer = AdamW(spans: [.init(param: 0, grad: 0, count: loraLayout.count, decay: true)], config: t)
            }
            replicas.append(Replica(model: m, head: head, optimizer: AdamW(model: m, config: config),
                                    headOptimizer: headOptimizer, source: try makeSource(i)))
        }
        self.replicas = replicas
        let first = replicas[0]
        evalActs = Activations(config: model, batch: first.source.batchSize, seqLen: first.source.contextLength)
        evalInputs = .allocate(capacity: evalActs.rows)
        evalTargets = .allocate(capacity: evalActs.rows)
    }

    deinit { evalInputs.deallocate(); evalTargets.deallocate() }

    /// The adapters' learning rate follows the same schedule, scaled to `lte.learning_rate`.
    var headRateFactor: Float { (lora.learningRate ?? config.learningRate) / config.learningRate }

    public func trainStep(iteration: Int) -> Float {
        learningRate = config.schedule.rate(at: iteration)
        var total = 0.0
        for r in replicas {
            r.source.next(inputs: r.inputs, targets: r.targets)
            r.model.zeroGrad()
            r.head?.grads.zero()
            let loss = r.model.forward(r.acts, tokens: r.inputs, targets: r.targets)
            r.model.backward(r.acts)
            clipJointly(r)
            r.optimizer.update(params: r.model.params.pointer, grads: r.model.grads.pointer, lr: learningRate)
            if let h = r.head, let o = r.headOptimizer {
                o.update(params: h.factors.pointer, grads: h.grads.pointer, lr: learningRate * headRateFactor)
            }
            tokensSeen += r.acts.rows
            total += Double(loss)
        }
        // The last step always closes a round, so the final model holds every head's work.
        if let t = syncEvery, (iteration + 1) % t == 0 || iteration + 1 == config.iterations {
            synchronize(present: Array(replicas.indices))
        }
        return Float(total / Double(replicas.count))
    }

    /// Global-norm clipping over everything the replica trains (its factors and replicated tensors).
    private func clipJointly(_ r: Replica) {
        guard config.gradClip > 0 else { return }
        var sq = Vec.sumOfSquares(r.model.grads.pointer, count: r.model.grads.count)
        if let h = r.head { sq += Vec.sumOfSquares(h.grads.pointer, count: h.grads.count) }
        let norm = Float(sq.squareRoot())
        guard norm > config.gradClip else { return }
        let k = config.gradClip / (norm + 1e-6)
        Vec.scale(r.model.grads.pointer, by: k, count: r.model.grads.count)
        if let h = r.head { Vec.scale(h.grads.pointer, by: k, count: h.grads.count) }
    }

    /// A round: merge the present heads' deltas into `main`'s W, average the replicated tensors over
    /// the present replicas, and hand the result back to every replica.
    public func synchronize(present: [Int]) {
        guard !present.isEmpty else { return }
        let w = main.params.pointer
        let floatBytes = MemoryLayout<Float>.size
        let replicatedFloats = replicatedSpans.reduce(0) { $0 + $1.count }
        if let layout = replicas[0].head?.layout {
            let contributions = present.map { i -> LTEMerge.Contribution in
                let h = replicas[i].head!
                return .init(factors: h.factors.pointer, previous: lora.merge == .resetless && h.hasCorrection ? h.merged.pointer : nil)
            }
            LTEMerge.apply(to: w, layout: layout, heads: contributions, scale: lora.scale, totalHeads: replicas.count)
            for i in present { replicas[i].head!.didMerge(rule: lora.merge) }
            // Up: each head's factors and replicated tensors; down: every head's factors and the average.
            bytesCommunicated += present.count * (layout.count + replicatedFloats) * floatBytes
            bytesCommunicated += present.count * (replicas.count * layout.count + replicatedFloats) * floatBytes
        } else {
            bytesCommunicated += 2 * present.count * replicatedFloats * floatBytes
        }
        LTEMerge.average(spans: replicatedSpans, replicas: present.map { UnsafePointer(replicas[$0].model.params.pointer) }, into: w)
        for r in replicas { r.model.params.copy(from: main.params) }
        merges += 1
    }

    /// Validation loss of the merged model (`main`); for a mode that never merges, of the one
    /// replica with its adapter.
    public func validationLoss() -> Float {
        let model = syncEvery == nil ? replicas[0].model : main
        return evaluate(model, acts: evalActs, source: validation(), batches: config.evalIterations,
                        inputs: evalInputs, targets: evalTargets)
    }
}
