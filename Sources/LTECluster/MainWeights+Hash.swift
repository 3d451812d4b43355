import LTEBase
import LTEStore
import LTETraining

extension MainWeights {
    /// The weights hash every node compares (DESIGN.md §2), over the main model's parameters.
    var weightsHash: WeightsDigest { WeightsHash.sha256(params: model.params.pointer, layout: model.layout) }

    /// The second hash (`lte.frozen_weights` int8 or nf4): over the frozen weights as the heads read
    /// them, quantized; nil when they read float32 W itself.
    var frozenHash: WeightsDigest? { quantizedFrozen.map { WeightsHash.sha256(frozen: $0) } }
}
