import Dispatch
import LTEModel
import LTENumerics

/// How the heads of one process share the machine between two merges.
///
/// The heads are independent until the next merge, so with several threads the cheapest split is by
/// head: each lane (thread) steps whole heads on a one-thread BLAS and serial loops, instead of every
/// product of one head being split across threads (the rank-r products gain nothing from splitting).
/// A lane needs its own activations; the heads of one lane share them, since they step in turn.
public struct HeadLanes {
    public let count: Int
    /// One set per lane: head i uses `activations[i % count]`.
    public let activations: [Activations]

    /// Lanes for `heads` heads at the process's thread count (`Parallel.threads`).
    public init(heads: Int, model: ModelConfig, batch: Int) {
        count = max(1, min(Parallel.threads, heads))
        foldsCorrection = count == heads
        activations = (0..<count).map { _ in Activations(config: model, batch: batch, seqLen: model.contextLength) }
    }

    public func activations(forHead index: Int) -> Activations { activations[index % count] }

    /// A lane with a single head keeps that head's weight copy with the correction folded in, so its
    /// steps skip the correction's products: it is refolded only when the round's merge changes W.
    /// Lanes of several heads read the shared W instead (one copy per head would cost P floats each).
    public let foldsCorrection: Bool

    /// One local step of every head at learning rate `lr`, each head's loss added to `losses[i]`
    /// (nothing is allocated). Each head's arithmetic is the same as at one thread, whichever lane
    /// runs it.
    public func step<Source>(_ replicas: [HeadReplica<Source>], lr: Float, addingLossesTo losses: inout [Double]) {
        precondition(losses.count == replicas.count, "one loss slot per head")
        guard count > 1 else {
            for (i, r) in replicas.enumerated() { losses[i] += Double(r.step(lr: lr)) }
            return
        }
        let threads = Parallel.threads
        BLASThreads.set(1)
        Parallel.threads = 1
        losses.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: count) { lane in
                for i in stride(from: lane, to: replicas.count, by: count) { out[i] += Double(replicas[i].step(lr: lr)) }
            }
        }
        Parallel.threads = threads
        BLASThreads.set(threads)
    }
}
