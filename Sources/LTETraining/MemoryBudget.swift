import Foundation
import LTEModel
import LTENumerics

/// The bytes a training step needs in principle, to hold measured peak RSS against.
///
/// - full: weights, their gradients and AdamW's two moments (4·P floats), plus one batch's activations.
/// - forward: the weights and the activations.
/// - a worker with h heads (W frozen): W once, since it is the same for every head between merges;
///   per head its copy of the replicated tensors R (embeddings, norm gains, an unwrapped lm_head) with
///   gradient and moments (4·R), its factors with gradient, last-merged copy and moments (5·F) and the
///   low-rank forward cache; the last-merged factors of every head of the run (the merge needs them);
///   one batch's activations per lane (`HeadLanes`: the heads of a lane step one after another);
///   each lane's fold scratch (`LayerFold`: the largest frozen group, into which the group is read
///   and the stepping head folded in); and with quantized frozen weights (`lte.frozen_weights`)
///   their quantized bytes besides the master. A head whose lane folds keeps u = x Aᵀ per site; one
///   that does not also keeps u⁰ = x A⁰ᵀ for its correction. With `lte.overlap`, per head the factors
///   it pushed for the round whose merge is in flight (F: its fold counts them, `LoRAHead.awaitMerge`).
///   With `lte.outer nesterov`, wherever W is merged, the outer optimizer's velocity and a round's Δ
///   over the wrapped weights (`OuterOptimizer`).
///
/// Besides the model's floats, `runtime`: the bytes the process held before it built the model (the
/// Swift runtime and Foundation, the binary and the libraries' code, OpenBLAS's buffers), measured
/// (`adding(runtime:)`), since no formula knows them. Without it a small model's peak looked 1.3–1.6×
/// its budget (about 28 MB of 50–140), a large one's not (the same 28 MB of 1,900).
public struct MemoryBudget: Sendable {
    public let weights: Int, optimizer: Int, adapters: Int, activations: Int
    /// Bytes resident before the model was built (0 until `adding(runtime:)`).
    public private(set) var runtime = 0
    public var bytes: Int { 4 * (weights + optimizer + adapters + activations) + runtime }
    /// What a process keeps from step to step: everything but the activations (weights, gradients,
    /// optimizer moments, factors, fold scratch).
    public var stateBytes: Int { 4 * (weights + optimizer + adapters) }

    /// The same budget with `bytes` resident before the model (`ProcessMemory.residentBytes()` then).
    public func adding(runtime bytes: Int) -> MemoryBudget {
        var b = self
        b.runtime += bytes
        return b
    }

    public static func full(_ c: ModelConfig, batch: Int, recompute: TrainingConfig.Recompute = .none) -> MemoryBudget {
        let p = ParameterLayout(c).count
        return MemoryBudget(weights: p, optimizer: 3 * p, adapters: 0,
                            activations: Activations.floatCount(config: c, batch: batch, seqLen: c.contextLength,
                                                                recomputesBlocks: recompute == .blocks))
    }

    public static func forward(_ c: ModelConfig, batch: Int) -> MemoryBudget {
        MemoryBudget(weights: ParameterLayout(c).count, optimizer: 0, adapters: 0,
                     activations: Activations.floatCount(config: c, batch: batch, seqLen: c.contextLength))
    }

    public static func worker(_ c: ModelConfig, lora: LoRAConfig, heads: Int, totalHeads: Int, batch: Int, lanes: Int = 1,
                              foldScratch: Int = 0, recompute: TrainingConfig.Recompute = .none,
                              holdsFrozenMaster: Bool = true) -> MemoryBudget {
        let (layout, sites, replicated) = split(c, lora)
        let rows = batch * c.contextLength
        let cache = rows * lora.rank * ((foldScratch > 0 ? 1 : 2) * sites.sites.count + 1)
        let quantized = lora.frozenWeights == .f32 ? 0 : (lora.frozenWeights.byteCount(values: layout.count - replicated) + 3) / 4
        // W in float32 once (the heads read it, or it is the master they are quantized from), unless
        // a worker holds it quantized only.
        let merges = holdsFrozenMaster || quantized == 0
        let master = merges ? layout.count : replicated
        let outer = merges ? outerFloats(lora, wrapped: layout.count - replicated) : 0
        return MemoryBudget(weights: master + quantized + heads * replicated + lanes * foldScratch, optimizer: heads * 3 * replicated + outer,
                            adapters: heads * ((lora.overlap ? 6 : 5) * sites.count + cache) + totalHeads * sites.count,
                            activations: lanes * Activations.floatCount(config: c, batch: batch, seqLen: c.contextLength,
                                                                        recomputesBlocks: recompute == .blocks))
    }

    /// The parameter server: the main weights, every head's last-merged factors, and one round of
    /// pushes (factors and replicated tensors of every head) held until the round closes.
    public static func server(_ c: ModelConfig, lora: LoRAConfig, totalHeads: Int) -> MemoryBudget {
        let (layout, sites, replicated) = split(c, lora)
        return MemoryBudget(weights: layout.count, optimizer: outerFloats(lora, wrapped: layout.count - replicated),
                            adapters: totalHeads * sites.count + totalHeads * (sites.count + replicated), activations: 0)
    }

    /// The outer optimizer's velocity and a round's Δ, over the wrapped weights (none without one).
    private static func outerFloats(_ lora: LoRAConfig, wrapped: Int) -> Int { lora.outer == .nesterov ? 2 * wrapped : 0 }

    /// The model's parameters, its adapter sites, and how many parameters are replicated (not wrapped).
    private static func split(_ c: ModelConfig, _ lora: LoRAConfig) -> (ParameterLayout, LoRALayout, Int) {
        let layout = ParameterLayout(c)
        let sites = LoRALayout(model: c, layout: layout, rank: lora.rank, wrapLMHead: lora.wrapLMHead)
        let frozen = sites.wrappedTensorNames
        return (layout, sites, layout.tensors.filter { !frozen.contains($0.name) }.reduce(0) { $0 + $1.count })
    }

    public var megabytes: Double { Double(bytes) / 1_048_576 }

    /// An in-process `lte train --mode` run: the dense model (full); N dense replicas besides the
    /// main weights (fedavg); else one worker holding every head, each lane with its activations.
    public static func training(_ mode: TrainingMode, _ cfg: RunConfig) -> MemoryBudget {
        let c = cfg.model, t = cfg.training
        let n = mode.replicaCount(heads: cfg.lte.heads), lanes = max(1, min(t.threads, n))
        switch mode {
        case .full: return .full(c, batch: t.batchSize, recompute: t.recompute)
        case .fedavg:
            let one = MemoryBudget.full(c, batch: t.batchSize, recompute: t.recompute)
            return MemoryBudget(weights: (n + 1) * one.weights, optimizer: n * one.optimizer, adapters: 0, activations: lanes * one.activations)
        case .lte, .lora, .loraMerge:
            return .worker(c, lora: cfg.lte, heads: n, totalHeads: n, batch: t.batchSize, lanes: lanes, recompute: t.recompute)
        }
    }

    public static let zero = MemoryBudget(weights: 0, optimizer: 0, adapters: 0, activations: 0)

    /// Two budgets held at once: processes on one machine (`lte launch`), a bench's candidates.
    public static func + (a: MemoryBudget, b: MemoryBudget) -> MemoryBudget {
        MemoryBudget(weights: a.weights + b.weights, optimizer: a.optimizer + b.optimizer, adapters: a.adapters + b.adapters,
                     activations: a.activations + b.activations)
    }

    /// Refuses, in one line and before anything is allocated, what the machine's available memory
    /// cannot hold: "`what` needs about N GB of memory, the machine has M GB available" (a model too
    /// big would otherwise end in a failed allocation part way through, a crash).
    public func requireAvailable(for what: String) throws {
        try SystemResources.requireMemory(bytes, for: what)
    }
}

/// "peak RSS 123.4 MB (theoretical 100.0 MB, 28.0 MB of it before the model)": what a process prints
/// when it finishes; `runtime` is what it held before the model was built (`ProcessMemory.residentBytes()`).
public func peakMemoryReport(_ budget: MemoryBudget, runtime: Int?) -> String {
    let peak = Double(ProcessMemory.peakResidentBytes() ?? 0) / 1_048_576
    let b = budget.adding(runtime: runtime ?? 0)
    return String(format: "peak RSS %.1f MB (theoretical %.1f MB, %.1f MB of it before the model)", peak, b.megabytes, Double(b.runtime) / 1_048_576)
}
