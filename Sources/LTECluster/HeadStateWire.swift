import LTEBase
import LTENet
import LTETraining

/// A head's whole training state (`HeadTrainingState`) as wire tensors, in a leave and in the
/// welcome of the worker that takes the head next:
///
///   factors.<head>          its A|B factors (as in a push)
///   state.<head>.head_m     its own AdamW's first and second moments, over the factors
///   state.<head>.head_v
///   state.<head>.replica_m  its replica's AdamW's moments, over the replicated tensors
///   state.<head>.replica_v
///
/// The step count travels beside them (`optimizerSteps`), as an integer.
enum HeadStateNames {
    static func headM(_ h: Int) -> String { "state.\(h).head_m" }
    static func headV(_ h: Int) -> String { "state.\(h).head_v" }
    static func replicaM(_ h: Int) -> String { "state.\(h).replica_m" }
    static func replicaV(_ h: Int) -> String { "state.\(h).replica_v" }

    /// The tensors a head's state needs, with their flat sizes.
    static func expected(head h: Int, factorCount: Int, replicaMomentCount: Int) -> [String: Int] {
        [WireNames.factors(h): factorCount, headM(h): factorCount, headV(h): factorCount,
         replicaM(h): replicaMomentCount, replicaV(h): replicaMomentCount]
    }

    static func tensors(head h: Int, _ s: HeadTrainingState) -> [WireTensor] {
        [WireTensor(name: WireNames.factors(h), shape: [s.factors.count], values: s.factors),
         WireTensor(name: headM(h), shape: [s.headMoments.m.count], values: s.headMoments.m),
         WireTensor(name: headV(h), shape: [s.headMoments.v.count], values: s.headMoments.v),
         WireTensor(name: replicaM(h), shape: [s.replicaMoments.m.count], values: s.replicaMoments.m),
         WireTensor(name: replicaV(h), shape: [s.replicaMoments.v.count], values: s.replicaMoments.v)]
    }

    static func state(head h: Int, step: Int, from ts: [WireTensor], factorCount: Int, replicaMomentCount: Int) throws -> HeadTrainingState {
        HeadTrainingState(factors: try ts.flat(WireNames.factors(h), count: factorCount),
                          headMoments: (try ts.flat(headM(h), count: factorCount), try ts.flat(headV(h), count: factorCount)),
                          replicaMoments: (try ts.flat(replicaM(h), count: replicaMomentCount), try ts.flat(replicaV(h), count: replicaMomentCount)),
                          optimizerStep: step)
    }
}
