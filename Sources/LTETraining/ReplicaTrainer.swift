import LTEBase
import LTEData
import LTEModel
import LTENumerics

/// Trains N replicas of the model in one process and brings them together every T steps: the
/// in-process form of LTE and of its baselines (see `TrainingMode`).
///
/// `main` is what a parameter server holds (W and the averaged replicated tensors as of the last
/// merge); each `HeadReplica` is what a worker holds for one head. The distributed runtime runs the
/// same pieces in other processes, so with the same seeds both end on the same bits.
public final class ReplicaTrainer<Source: BatchSource>: TrainingRun {
    public let mode: TrainingMode
    public let main: MainWeights
    public let replicas: [HeadReplica<Source>]
    public let config: TrainingConfig
    public let lora: LoRAConfig
    public let syncEvery: Int?
    let validation: () -> any BatchSource
    let lanes: HeadLanes
    private var stepLosses: [Double]
    let evalActs: Activations
    let evalInputs: UnsafeMutablePointer<Int32>, evalTargets: UnsafeMutablePointer<Int32>
    public internal(set) var tokensSeen = 0
    public internal(set) var bytesCommunicated = 0
    public private(set) var learningRate: Float = 0
    public var merges: Int { main.round }
    /// With `lte.overlap`: the round pushed at the end of the last round's steps, merged at the end
    /// of this round's (as a worker applies merge k before its push k + 1).
    var inFlight: PushedRound?

    /// `makeSource(i)` gives replica i its batches (its own shard); `validation()` a fresh,
    /// identically seeded source of validation batches.
    /// `asWorker` holds what one worker process holds rather than the server's part too: with
    /// quantized frozen weights, no float32 W and no merge into it (`MainWeights.holdsFrozenMaster`);
    /// the bench measures a worker this way. Otherwise the same.
    public init(mode: TrainingMode, model: ModelConfig, config: TrainingConfig, lora: LoRAConfig, asWorker: Bool = false,
                makeSource: (Int) throws -> Source, validation: @escaping () -> any BatchSource) throws {
        guard mode != .full else { throw LTEError("ReplicaTrainer runs the replicated modes; use Trainer for --mode full") }
        if mode.usesAdapters { try lora.validate(for: model) } else { try lora.validate() }
        self.mode = mode
        self.config = config
        self.lora = lora
        self.validation = validation
        syncEvery = mode.syncInterval(mergeEvery: lora.mergeEvery)
        let n = mode.replicaCount(heads: lora.heads)
        let main = try MainWeights(model: model, lora: mode.usesAdapters ? lora : nil, totalHeads: n, seed: config.seed,
                                   holdsFrozenMaster: !asWorker)
        self.main = main
        let sources = try (0..<n).map(makeSource)
        let folds = mode.usesAdapters && syncEvery != nil
        let lanes = HeadLanes(heads: n, model: model, batch: sources[0].batchSize, recompute: config.recompute, main: main.model.params, frozen: main.frozenStore,
                              layout: main.model.layout, adapters: main.layout, foldsHeads: folds)
        self.lanes = lanes
        replicas = try (0..<n).map { i in
            try HeadReplica(id: i, main: main, training: config, source: sources[i], activations: lanes.activations(forHead: i),
                            frozenSource: lanes.frozenSource(forHead: i))
        }
        evalActs = lanes.activations[0]   // evaluation runs between steps
        stepLosses = Array(repeating: 0, count: n)
        evalInputs = .allocate(capacity: evalActs.rows)
        evalTargets = .allocate(capacity: evalActs.rows)
    }

    deinit { evalInputs.deallocate(); evalTargets.deallocate() }

    /// What the heads need in principle, as one worker process holding all of them would
    /// (MemoryBudget.worker); nil for the dense replicas of fedavg.
    public var memoryBudget: MemoryBudget? {
        guard mode.usesAdapters else { return nil }
        return .worker(main.model.config, lora: lora, heads: replicas.count, totalHeads: replicas.count, batch: config.batchSize,
                       lanes: lanes.count, foldScratch: lanes.scratchCount, recompute: config.recompute,
                       holdsFrozenMaster: main.holdsFrozenMaster)
    }

    public func trainStep(iteration: Int) -> Float {
        learningRate = config.schedule.rate(at: iteration)
        for i in stepLosses.indices { stepLosses[i] = 0 }
        lanes.step(replicas, lr: learningRate, addingLossesTo: &stepLosses)
        let total = stepLosses.reduce(0, +)
        tokensSeen += replicas.reduce(0) { $0 + $1.tokensPerStep }
        // The last step always closes a round, so the final model holds every head's work.
        if let t = syncEvery, (iteration + 1) % t == 0 || iteration + 1 == config.iterations {
            if lora.overlap {
                if let previous = inFlight { merge(previous) }
                let pushed = push(present: Array(replicas.indices))
                // The last round is merged at once, as a worker waits for the run's last merge.
                if iteration + 1 == config.iterations { merge(pushed); inFlight = nil } else { awaitMerge(of: pushed); inFlight = pushed }
            } else {
                synchronize(present: Array(replicas.indices))
            }
        }
        return Float(total / Double(replicas.count))
    }

    /// A round over the replicas present: merge into `main`, then hand the result to every replica.
    public func synchronize(present: [Int]) {
        guard !present.isEmpty else { return }
        merge(push(present: present))
    }

    /// What the replicas present send for a round, as a worker pushes it: factors in the push
    /// format (and the values they stand for), replicated tensors packed.
    struct PushedRound {
        let heads: [Int]
        let factors: [PushedFactors?]
        let replicated: [FloatBuffer]
    }

    func push(present: [Int]) -> PushedRound {
        PushedRound(heads: present,
                    factors: present.map { i in replicas[i].head.map { PushedFactors(quantizing: $0.factors, format: lora.pushFormat) } },
                    replicated: present.map { main.packReplicated(replicas[$0].model.params.pointer) })
    }

    /// Until `round` is merged, each head that pushed in it counts its pushed progress at the weight
    /// `lte.overlap_extrapolation` gives it (`LoRAHead.awaitMerge`), as a worker's heads do between a
    /// push and its merge.
    func awaitMerge(of round: PushedRound) {
        guard lora.merge == .resetless else { return }
        for (k, i) in round.heads.enumerated() {
            if let head = replicas[i].head, let pushed = round.factors[k] { head.awaitMerge(of: pushed.values, totalHeads: main.totalHeads, extrapolation: lora.overlapExtrapolation) }
        }
    }

    /// Merges a pushed round into `main` and hands the result to every replica: the heads' Vᵢ become
    /// the dequantized factors they pushed (reset-less), and with `lte.overlap` each replica keeps
    /// the progress it made since its push.
    func merge(_ round: PushedRound) {
        // With a quantized push format the replicated tensors travel as their change since the last
        // merge (`ReplicatedDelta`): merged, and the mean applied, as the server and workers do.
        let format = mode.usesAdapters ? lora.pushFormat : .f32
        let base = main.packReplicated(main.model.params.pointer)
        let changes = format == .f32 ? nil : round.replicated.map { r in
            ReplicatedDelta(values: r.pointer, base: base.pointer, count: r.count, format: format)
        }
        let asPushed = changes?.map { $0.values(over: base.pointer) } ?? round.replicated
        let mean = main.merge(round.heads.indices.map { k in
            MainWeights.Push(head: round.heads[k], factors: round.factors[k]?.values, replicated: asPushed[k])
        })
        let meanChange = main.settleReplicatedMean(mean, base: base, format: format)
        for r in replicas {
            guard let head = r.head else { continue }
            guard let k = round.heads.firstIndex(of: r.id), let pushed = round.factors[k] else { head.pushWasNotMerged(); continue }
            if lora.merge == .resetless { head.setMerged(from: pushed.values.pointer) } else { head.didMerge(rule: lora.merge) }
        }
        for (i, r) in replicas.enumerated() {
            if lora.overlap, let k = round.heads.firstIndex(of: i) {
                r.adopt(main.model.params, keepingProgressSince: round.replicated[k])
            } else {
                r.adopt(main.model.params)
            }
        }
        let replicatedBytes = 4 * main.replicatedCount
        bytesCommunicated += MainWeights.roundBytes(factors: round.factors.map { $0?.quantized.wireByteCount ?? 0 },
                                                    replicated: changes?.map(\.quantized.wireByteCount) ?? round.heads.map { _ in replicatedBytes },
                                                    mean: meanChange?.quantized.wireByteCount ?? replicatedBytes)
    }

    /// Validation loss of the merged model; for a mode that never merges, of the one replica with
    /// its adapter.
    public func validationLoss() -> Float {
        let model = syncEvery == nil ? replicas[0].model : main.model
        return evaluate(model, acts: evalActs, source: validation(), batches: config.evalIterations,
                        inputs: evalInputs, targets: evalTargets)
    }
}
