import LTENet
import LTETraining

extension MessageValidation {
    /// Checks a leave's meaning: its heads, and for each exactly the state tensors a head of this
    /// run has (`HeadStateNames`), finite. Returns each head's state.
    func checkLeave(_ l: LeaveMessage) throws(Refusal) -> [Int: HeadTrainingState] {
        let from = "leave from \(l.workerId)"
        try checkWorker(l.workerId)
        do throws(Refusal) { try checkHeads(l.headIds) } catch { throw Refusal(code: error.code, message: "\(from): \(error.message)") }
        // Without adapters (FedAvg) a head has no state of its own: the leave only frees it.
        guard let factorCount else {
            guard l.tensors.isEmpty else { throw Refusal(code: .wrongShape, message: "\(from): this run has no adapters, a leave carries no tensors") }
            return [:]
        }
        var expected: [String: Int] = [:]
        for h in l.headIds { expected.merge(HeadStateNames.expected(head: h, factorCount: factorCount, replicaMomentCount: replicatedCount)) { a, _ in a } }
        guard l.tensors.count == expected.count else {
            throw Refusal(code: .wrongShape, message: "\(from): \(l.tensors.count) tensors, a leave of \(l.headIds.count) heads carries \(expected.count)")
        }
        for t in l.tensors {
            guard let n = expected[t.name] else { throw Refusal(code: .wrongShape, message: "\(from): unexpected tensor '\(t.name.prefix(80))'") }
            guard t.shape == [n] else { throw Refusal(code: .wrongShape, message: "\(from): tensor \(t.name) has shape \(t.shape), the run's model needs [\(n)]") }
            guard t.values.allSatisfy(\.isFinite) else { throw Refusal(code: .nonFinite, message: "\(from): tensor \(t.name) holds NaN or Inf") }
        }
        var states: [Int: HeadTrainingState] = [:]
        for (h, step) in zip(l.headIds, l.optimizerSteps) {
            do {
                states[h] = try HeadStateNames.state(head: h, step: step, from: l.tensors, factorCount: factorCount, replicaMomentCount: replicatedCount)
            } catch { throw Refusal(code: .wrongShape, message: "\(from): \(error)") }
        }
        return states
    }
}
