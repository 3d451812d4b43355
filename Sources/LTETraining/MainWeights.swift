import LTEModel
import LTENumerics

/// The parameter server's state, and the one place the merge of a round is carried out: the main
/// weights (W and the averaged replicated tensors) and every head's factors as of its last merge
/// (whose product is that head's correction Vᵢ). The in-process trainer, the server, each worker and
/// replay all merge through this type, so they all hold the same bits.
public final class MainWeights {
    public let model: Transformer
    public let lora: LoRAConfig?
    public let layout: LoRALayout?
    public let totalHeads: Int
    /// Offsets and sizes of the tensors every replica trains and each round averages.
    public let replicatedSpans: [(offset: Int, count: Int)]
    public var replicatedCount: Int { replicatedSpans.reduce(0) { $0 + $1.count } }
    /// Factors of head i at its last merge; nil before its first (reset-B: always nil, V = 0).
    public private(set) var lastMerged: [FloatBuffer?]
    public private(set) var round = 0
    /// The frozen weights in the form the heads read them (`lte.frozen_weights`): nil when that is
    /// `model.params` itself (f32), else quantized from it after every change, so every node that
    /// holds the same master weights holds the same quantized bytes.
    public let quantizedFrozen: QuantizedWeights?
    /// Where the heads read their frozen weights.
    public var frozenStore: any FrozenWeightStore { quantizedFrozen ?? model.params }

    /// False on a worker whose heads read the frozen weights quantized (`lte.frozen_weights`): once
    /// quantized, the float32 frozen tensors are given back to the kernel, and W is not merged here
    /// (the server merges it; its heads read the quantized form). True wherever W is merged.
    public let holdsFrozenMaster: Bool
    /// `lte.outer nesterov`: the outer step every merge of W goes through, and its velocity m.
    /// Nil under `none`, and where W is not merged (a worker without the float32 master).
    public let outer: OuterOptimizer?

    public init(model config: ModelConfig, lora: LoRAConfig?, totalHeads: Int, seed: UInt64, holdsFrozenMaster: Bool = true) throws {
        try lora?.validate(for: config)
        let model = try Transformer(config: config, trainable: { _ in false })
        model.initialize(seed: seed)
        self.model = model
        self.lora = lora
        self.totalHeads = totalHeads
        let layout = lora.map { LoRALayout(model: config, layout: model.layout, rank: $0.rank, wrapLMHead: $0.wrapLMHead) }
        self.layout = layout
        let frozen = layout?.wrappedTensorNames ?? []
        replicatedSpans = model.layout.tensors.filter { !frozen.contains($0.name) }.map { ($0.offset, $0.count) }
        lastMerged = Array(repeating: nil, count: totalHeads)
        quantizedFrozen = lora.flatMap { l in l.frozenWeights == .f32 ? nil :
            QuantizedWeights(params: model.params, layout: model.layout, names: frozen, format: l.frozenWeights) }
        self.holdsFrozenMaster = holdsFrozenMaster || quantizedFrozen == nil
        if let lora, let layout, self.holdsFrozenMaster {
            outer = OuterOptimizer(lora, parameterCount: model.params.count, layout: layout)
        } else {
            outer = nil
        }
        if !self.holdsFrozenMaster { releaseFrozenMaster() }
    }

    /// The float32 frozen tensors, given back to the kernel (a worker holding them quantized).
    private func releaseFrozenMaster() {
        guard let q = quantizedFrozen else { return }
        for e in q.entries { model.params.release(offset: e.offset, count: e.count) }
    }

    /// The float32 weights were written whole (a worker joining, a server resuming): the quantized
    /// frozen weights follow them, and a worker without the master gives the float32 pages back.
    public func weightsWritten() {
        quantizedFrozen?.requantize(from: model.params)
        if !holdsFrozenMaster { releaseFrozenMaster() }
    }

    /// A worker without the master takes the frozen weights the server requantized after a merge,
    /// in layout order, as they came (so it holds the server's bytes).
    public func receiveFrozen(_ tensors: [QuantizedTensor]) {
        quantizedFrozen?.replace(with: tensors)
    }

    /// One head's part in a round: its current factors (adapter modes) and its replicated tensors,
    /// packed (`packReplicated`).
    public struct Push {
        public let head: Int
        public let factors: FloatBuffer?
        public let replicated: FloatBuffer
        public init(head: Int, factors: FloatBuffer?, replicated: FloatBuffer) {
            self.head = head; self.factors = factors; self.replicated = replicated
        }
    }

    /// Closes a round over the heads present, in ascending head order whatever order they came in:
    /// W ← W + (s/N) Σ (BᵢAᵢ − Vᵢ) (or the reset-B rule), replicated tensors ← their mean, Vᵢ ← BᵢAᵢ.
    /// Returns the packed mean of the replicated tensors (what the workers are sent).
    @discardableResult
    public func merge(_ pushes: [Push]) -> [Float] {
        let pushes = pushes.sorted { $0.head < $1.head }
        guard !pushes.isEmpty else { return [] }
        mergeFactors(pushes.map { ($0.head, $0.factors) })
        if holdsFrozenMaster { quantizedFrozen?.requantize(from: model.params) }
        let mean = FloatBuffer(count: replicatedCount)
        LTEMerge.average(spans: [(0, replicatedCount)], replicas: pushes.map(\.replicated), into: mean)
        unpackReplicated(mean.array)
        round += 1
        return mean.array
    }

    /// A worker's side of a round: the same factor merge from the factors the server sent, and the
    /// server's mean of the replicated tensors copied in. Ends on the server's bits.
    public func apply(factors: [(head: Int, factors: FloatBuffer?)], replicatedMean: [Float]) {
        mergeFactors(factors.sorted { $0.head < $1.head })
        if holdsFrozenMaster { quantizedFrozen?.requantize(from: model.params) }
        unpackReplicated(replicatedMean)
        round += 1
    }

    private func mergeFactors(_ heads: [(head: Int, factors: FloatBuffer?)]) {
        guard let lora, let layout else { return }
        // Without the master there is no W to merge into: only the heads' last-merged factors move.
        guard holdsFrozenMaster else {
            if lora.merge == .resetless { for h in heads { setLastMerged(head: h.head, from: h.factors!.pointer) } }
            return
        }
        let contributions = heads.map { h in
            LTEMerge.Contribution(factors: h.factors!, previous: lora.merge == .resetless ? lastMerged[h.head] : nil)
        }
        // With the outer optimizer the merged delta Δ = (s/N) Σ (BᵢAᵢ − Vᵢ) is a pseudo-gradient and
        // W moves by η·(Δ + μ·m), not by Δ. Vᵢ still becomes BᵢAᵢ below, and that is still right,
        // though Vᵢ is then no longer "what was added to W on head i's behalf": in the fold
        // W + s·BᵢAᵢ − s·Vᵢ, Vᵢ is the head's reference point, not its share of W. Right after the
        // merge a head's effective weight is W itself (the outer-stepped W every node holds), and
        // BᵢAᵢ − Vᵢ at its next merge is exactly its progress from there: the next pseudo-gradient.
        // What no longer holds is W − W₀ = (s/N) Σ BᵢAᵢ; W − W₀ is the sum of the outer steps. A head
        // that misses rounds still loses nothing: BᵢAᵢ − Vᵢ keeps all its progress since its last
        // merge, which enters the next merge it joins (as that round's pseudo-gradient). Under
        // `lte.overlap` the same holds with merge k applied one round late on every node alike.
        // The replicated tensors are averaged as before (not stepped): see `merge`.
        if let outer {
            outer.merge(into: model.params) { delta in
                LTEMerge.apply(to: delta, layout: layout, heads: contributions, scale: lora.scale, totalHeads: totalHeads)
            }
        } else {
            LTEMerge.apply(to: model.params, layout: layout, heads: contributions, scale: lora.scale, totalHeads: totalHeads)
        }
        if lora.merge == .resetless {
            for h in heads { setLastMerged(head: h.head, from: h.factors!.pointer) }
        }
    }

    /// Records head `head`'s factors as of its last merge (on a worker joining, from the server).
    public func setLastMerged(head: Int, from factors: UnsafePointer<Float>) {
        guard let layout else { return }
        let b = lastMerged[head] ?? FloatBuffer(count: layout.count)
        b.pointer.update(from: factors, count: layout.count)
        lastMerged[head] = b
    }

    /// Sets the round counter (a worker joining, a server resuming).
    public func setRound(_ r: Int) { round = r }

    /// The replicated tensors of a parameter buffer, concatenated in layout order.
    public func packReplicated(_ params: UnsafePointer<Float>) -> FloatBuffer {
        let out = FloatBuffer(count: replicatedCount)
        var i = 0
        for (o, n) in replicatedSpans { (out.pointer + i).update(from: params + o, count: n); i += n }
        return out
    }

    func unpackReplicated(_ values: [Float]) {
        var i = 0
        for (o, n) in replicatedSpans {
            values.withUnsafeBufferPointer { (model.params.pointer + o).update(from: $0.baseAddress! + i, count: n) }
            i += n
        }
    }

    /// Bytes that cross the network for a round, one head per worker, as a distributed run sends
    /// them: up, each head's factors and replicated tensors (`factors[k]`, `replicated[k]` bytes);
    /// down, to each, every other head's factors (its own it holds) and the average (`mean` bytes).
    public static func roundBytes(factors: [Int], replicated: [Int], mean: Int) -> Int {
        let all = factors.reduce(0, +)
        let up = all + replicated.reduce(0, +)
        let down = factors.reduce(0) { $0 + (all - $1) + mean }
        return up + down
    }
}
