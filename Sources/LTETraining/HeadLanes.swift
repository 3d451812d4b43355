import Dispatch
import LTEModel
import LTENumerics

/// How the heads of one process share the machine between two merges.
///
/// The heads are independent until the next merge, so with several threads the cheapest split is by
/// head: each lane (thread) steps whole heads on a one-thread BLAS and serial loops, instead of every
/// product of one head being split across threads (the rank-r products gain nothing from splitting).
/// A lane needs its own activations; the heads of one lane share them, since they step in turn.
///
/// A lane of a run that merges also holds a `LayerFold`: one layer of scratch into which each frozen
/// group is read right before its product and the stepping head's term and correction folded in, so
/// W's own products carry them (W + s·BᵢAᵢ − s·Vᵢ, LoRAHead) and the head computes only the two
/// rank-r products its gradients need. The fold is made anew from the frozen weights each time, so a
/// head's arithmetic does not depend on which lane ran it, nor on what the lane ran before. Frozen
/// weights held quantized (`lte.frozen_weights`) are dequantized in the same pass.
public final class HeadLanes {
    public let count: Int
    /// One set per lane: head i uses `activations[i % count]`.
    public let activations: [Activations]
    /// Per lane, the scratch its heads read their frozen layers from (nil: they read the main
    /// weights in place, f32 and never folded).
    public let folds: [LayerFold]?
    private let main: FloatBuffer
    /// True when the heads' terms are folded into the lanes' scratch before each step.
    public let foldsHeads: Bool

    /// Lanes for `heads` heads at the process's thread count (`Parallel.threads`). `main` holds the
    /// main weights; `frozen` the frozen weights the heads read (`main` itself, or their quantized
    /// form); `layout` and `adapters` place them. With `foldsHeads` each step folds the head in.
    public init(heads: Int, model: ModelConfig, batch: Int, recompute: TrainingConfig.Recompute = .none, main: FloatBuffer,
                frozen: any FrozenWeightStore, layout: ParameterLayout, adapters: LoRALayout?, foldsHeads: Bool) {
        count = max(1, min(Parallel.threads, heads))
        activations = (0..<count).map { _ in
            Activations(config: model, batch: batch, seqLen: model.contextLength, recomputesBlocks: recompute == .blocks)
        }
        self.main = main
        self.foldsHeads = foldsHeads && adapters != nil
        let readsInPlace = (frozen as? FloatBuffer) === main && !self.foldsHeads
        let frozenNames = adapters?.wrappedTensorNames ?? []
        folds = readsInPlace || frozenNames.isEmpty ? nil : (0..<count).map { _ in
            LayerFold(store: frozen, model: model, layout: layout, frozen: frozenNames, adapters: adapters)
        }
    }

    public func activations(forHead index: Int) -> Activations { activations[index % count] }
    /// Where head `index` reads its frozen weights.
    public func frozenSource(forHead index: Int) -> any FrozenWeights { folds?[index % count] ?? main }
    /// Floats of fold scratch per lane (0 when the lanes read the main weights in place).
    public var scratchCount: Int { folds?.first?.scratchCount ?? 0 }

    /// One step of `replica` on `lane`, with the head folded into the lane's scratch while it steps;
    /// the optimizer step moves the factors, which ends the fold.
    private func step<Source>(_ replica: HeadReplica<Source>, lane: Int, lr: Float) -> Float {
        guard foldsHeads, let folds, let head = replica.head else { return replica.step(lr: lr) }
        folds[lane].head = head
        head.markFolded()
        defer { head.unfold(); folds[lane].head = nil }
        return replica.step(lr: lr)
    }

    /// One local step of every head at learning rate `lr`, each head's loss added to `losses[i]`
    /// (nothing is allocated). Each head's arithmetic is the same whichever lane runs it.
    public func step<Source>(_ replicas: [HeadReplica<Source>], lr: Float, addingLossesTo losses: inout [Double]) {
        precondition(losses.count == replicas.count, "one loss slot per head")
        guard count > 1 else {
            for (i, r) in replicas.enumerated() { losses[i] += Double(step(r, lane: 0, lr: lr)) }
            return
        }
        let threads = Parallel.threads
        BLASThreads.set(1)
        Parallel.threads = 1
        losses.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: count) { lane in
                for i in stride(from: lane, to: replicas.count, by: count) {
                    out[i] += Double(step(replicas[i], lane: lane, lr: lr))
                }
            }
        }
        Parallel.threads = threads
        BLASThreads.set(threads)
    }
}
