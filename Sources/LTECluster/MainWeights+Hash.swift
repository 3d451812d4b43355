import LTEBase
import LTEStore
import LTETraining

extension MainWeights {
    /// The weights hash every node compares (DESIGN.md §2), over the main model's parameters.
    var weightsHash: WeightsDigest { WeightsHash.sha256(params: model.params.pointer, layout: model.layout) }
}
