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
/// A lane of a run that merges also holds a working copy of the wrapped weights, made before every
/// step into the effective weight W + s·BᵢAᵢ − s·Vᵢ of the head it steps (LoRAHead.fold): W's own
/// products then carry the head's term and its correction, and the head computes only the two
/// rank-r products its gradients need. The copy is made anew from the main weights each step, so a
/// head's arithmetic does not depend on which lane ran it before, nor on what the lane ran.
public final class HeadLanes {
    public let count: Int
    /// One set per lane: head i uses `activations[i % count]`.
    public let activations: [Activations]
    /// Per lane, the weights its heads read their wrapped layers from (nil: the main weights).
    public let working: [FloatBuffer]?
    private let main: FloatBuffer

    /// Lanes for `heads` heads at the process's thread count (`Parallel.threads`). `main` holds the
    /// main weights; with `folds`, each lane keeps a working copy of them for its heads' folds.
    public init(heads: Int, model: ModelConfig, batch: Int, main: FloatBuffer, folds: Bool) {
        count = max(1, min(Parallel.threads, heads))
        activations = (0..<count).map { _ in Activations(config: model, batch: batch, seqLen: model.contextLength) }
        self.main = main
        // Only the wrapped layers of a copy are ever written (the fold), so only they become resident.
        working = folds ? (0..<count).map { _ in FloatBuffer(count: main.count) } : nil
    }

    public var folds: Bool { working != nil }
    public func activations(forHead index: Int) -> Activations { activations[index % count] }
    /// The buffer head `index` reads its frozen weights from.
    public func frozenSource(forHead index: Int) -> FloatBuffer { working?[index % count] ?? main }

    /// One step of `replica` on `lane`: into the lane's working copy go the main weights and then the
    /// head's term and correction; the optimizer step moves the factors, which ends the fold.
    private func step<Source>(_ replica: HeadReplica<Source>, lane: Int, lr: Float) -> Float {
        guard let working, let head = replica.head else { return replica.step(lr: lr) }
        head.fold(from: main.pointer, into: working[lane].pointer)
        defer { head.unfold() }
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
