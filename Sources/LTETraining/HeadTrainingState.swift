import LTENumerics

/// Everything a head's training carries from one round to the next besides the main weights and
/// its data position (which follows from the round): its factors, and the moments and step count of
/// both its AdamWs — the head's own over the factors and its replica's over the replicated tensors.
/// A worker leaving cleanly hands this over; the next worker to take the head restores it and
/// continues bit for bit where the first stopped (open membership).
public struct HeadTrainingState: Equatable {
    public var factors: [Float]
    public var headMoments: (m: [Float], v: [Float])
    public var replicaMoments: (m: [Float], v: [Float])
    /// Both AdamWs step together (one `HeadReplica.step` each), so one count serves both.
    public var optimizerStep: Int

    public init(factors: [Float], headMoments: (m: [Float], v: [Float]), replicaMoments: (m: [Float], v: [Float]), optimizerStep: Int) {
        self.factors = factors; self.headMoments = headMoments; self.replicaMoments = replicaMoments; self.optimizerStep = optimizerStep
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.factors == b.factors && a.headMoments.m == b.headMoments.m && a.headMoments.v == b.headMoments.v
            && a.replicaMoments.m == b.replicaMoments.m && a.replicaMoments.v == b.replicaMoments.v && a.optimizerStep == b.optimizerStep
    }
}

extension HeadReplica {
    /// Floats in the replica optimizer's moments (each of m and v).
    public var replicaMomentCount: Int { optimizer.m.count }

    /// The head's whole training state (adapter modes only: nil for a dense replica).
    public func trainingState() -> HeadTrainingState? {
        guard let head, let headOptimizer else { return nil }
        return HeadTrainingState(factors: head.factors.array, headMoments: (headOptimizer.m.array, headOptimizer.v.array),
                                 replicaMoments: (optimizer.m.array, optimizer.v.array), optimizerStep: optimizer.step)
    }

    /// Takes over a state `trainingState()` gave, on a replica of the same model and adapters.
    public func restore(_ s: HeadTrainingState) {
        guard let head, let headOptimizer else { return }
        precondition(s.factors.count == head.factors.count && s.headMoments.m.count == headOptimizer.m.count
                     && s.replicaMoments.m.count == optimizer.m.count, "a head state of another model")
        head.factors.copy(from: FloatBuffer(s.factors))
        headOptimizer.m.copy(from: FloatBuffer(s.headMoments.m)); headOptimizer.v.copy(from: FloatBuffer(s.headMoments.v))
        optimizer.m.copy(from: FloatBuffer(s.replicaMoments.m)); optimizer.v.copy(from: FloatBuffer(s.replicaMoments.v))
        headOptimizer.step = s.optimizerStep
        optimizer.step = s.optimizerStep
    }
}
