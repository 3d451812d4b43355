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
/// A lane of a run that merges also holds a working copy of the wrapped weights, W − s·Vᵢ for the
/// head it is stepping: the head's correction folded in, so its steps skip the correction's four
/// products per layer. The copy is refolded from the main weights when the lane moves to another
/// head or a merge changes W or Vᵢ (`invalidate`); a lane of one head refolds once per round.
public final class HeadLanes {
    public let count: Int
    /// One set per lane: head i uses `activations[i % count]`.
    public let activations: [Activations]
    /// Per lane, the weights its heads read their wrapped layers from (nil: the main weights).
    public let working: [FloatBuffer]?
    private let main: FloatBuffer
    private let frozen: [(offset: Int, count: Int)]
    /// Per lane, the head whose correction its working copy holds (−1: to be refolded). Raw memory,
    /// since the lanes write their own entries from their own threads.
    private let folded: UnsafeMutablePointer<Int>

    /// Lanes for `heads` heads at the process's thread count (`Parallel.threads`). `main` holds the
    /// main weights; `frozen` the spans of the wrapped layers, which a lane folds when `folds`.
    public init(heads: Int, model: ModelConfig, batch: Int, main: FloatBuffer, frozen: [(offset: Int, count: Int)], folds: Bool) {
        count = max(1, min(Parallel.threads, heads))
        activations = (0..<count).map { _ in Activations(config: model, batch: batch, seqLen: model.contextLength) }
        self.main = main
        self.frozen = frozen
        working = folds && !frozen.isEmpty ? (0..<count).map { _ in FloatBuffer(count: main.count) } : nil
        folded = .allocate(capacity: count)
        folded.initialize(repeating: -1, count: count)
    }

    deinit { folded.deallocate() }

    public var foldsCorrection: Bool { working != nil }
    public func activations(forHead index: Int) -> Activations { activations[index % count] }
    /// The buffer head `index` reads its frozen weights from.
    public func frozenSource(forHead index: Int) -> FloatBuffer { working?[index % count] ?? main }

    /// The main weights or some head's Vᵢ changed (a merge, a rejoin): every lane refolds.
    public func invalidate() { folded.update(repeating: -1, count: count) }

    /// Makes lane `lane`'s working copy hold W − s·Vᵢ for `replicas[i]`.
    private func fold<Source>(_ replicas: [HeadReplica<Source>], _ i: Int, lane: Int) {
        guard let working, folded[lane] != i else { return }
        if folded[lane] >= 0 { replicas[folded[lane]].head?.forgetFold() }
        for (offset, n) in frozen { (working[lane].pointer + offset).update(from: main.pointer + offset, count: n) }
        replicas[i].head?.foldCorrection(into: working[lane].pointer)
        folded[lane] = i
    }

    /// One local step of every head at learning rate `lr`, each head's loss added to `losses[i]`
    /// (nothing is allocated). Each head's arithmetic is the same whichever lane runs it.
    public func step<Source>(_ replicas: [HeadReplica<Source>], lr: Float, addingLossesTo losses: inout [Double]) {
        precondition(losses.count == replicas.count, "one loss slot per head")
        guard count > 1 else {
            for (i, r) in replicas.enumerated() {
                fold(replicas, i, lane: 0)
                losses[i] += Double(r.step(lr: lr))
            }
            return
        }
        let threads = Parallel.threads
        BLASThreads.set(1)
        Parallel.threads = 1
        losses.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: count) { lane in
                for i in stride(from: lane, to: replicas.count, by: count) {
                    fold(replicas, i, lane: lane)
                    out[i] += Double(replicas[i].step(lr: lr))
                }
            }
        }
        Parallel.threads = threads
        BLASThreads.set(threads)
    }
}
