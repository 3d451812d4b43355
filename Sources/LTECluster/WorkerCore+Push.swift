import LTENumerics
import LTETraining
import LTENet

/// What a worker's push carries (DESIGN.md §8): each head's factors in `lte.push_format`, and its
/// replicated tensors as values (f32) or as their quantized change since the last merge.
extension WorkerCore {
    /// Each head's factors in the run's push format (adapter modes), by head.
    func pushedFactors(_ s: Session) -> [Int: PushedFactors] {
        var out: [Int: PushedFactors] = [:]
        for r in s.replicas { if let h = r.head { out[r.id] = PushedFactors(quantizing: h.factors, format: s.descriptor.lte.pushFormat) } }
        return out
    }

    /// Each head's factors as pushed (`own`) and its replicated tensors.
    func pushTensors(_ s: Session, _ own: [Int: PushedFactors]) -> [WireTensor] {
        var tensors: [WireTensor] = []
        let format = s.descriptor.lte.pushFormat
        let base = s.main.packReplicated(s.main.model.params.pointer)
        for r in s.replicas {
            if let f = own[r.id] { tensors.append(WireTensor(name: WireNames.factors(r.id), pushed: f.quantized)) }
            tensors.append(WireTensor(name: WireNames.replicated(r.id), replicated: s.main.packReplicated(r.model.params.pointer),
                                      base: base, format: format))
        }
        return tensors
    }
}
