import Foundation
import LTEBase
import LTENet
import LTENumerics
import LTEStore
import LTETraining

/// Every field of a worker's message checked against the run before it can touch a round
/// (DESIGN.md §4: "bad input … gets a clear error reply and a log line; nothing already committed
/// changes"). The codec has already checked the frame (size, MAC, structure); this checks meaning:
/// a known worker name, known head ids, the exact tensors the run's model implies with the exact
/// shapes, finite values, and the token count an honest worker reports. The round and base commit
/// depend on the server's state and are checked by `ServerCore` under its lock.
struct MessageValidation {
    /// A refusal: the code the worker can act on and the one-line reason.
    struct Refusal: Error {
        let code: ErrorCode
        let message: String
    }

    /// One head of an accepted push, parsed into the server's buffers.
    struct Head {
        let head: Int
        /// Its factors as pushed (bytes and dequantized values), adapter modes only.
        let factors: PushedFactors?
        /// Its replicated tensors: their values (f32), or their change since the last merge as pushed
        /// (a quantized push format), which the server adds to its own under its lock.
        let replicated: Replicated
        let loss: Float
    }

    enum Replicated {
        case values(FloatBuffer)
        case change(ReplicatedDelta)
    }

    let descriptor: RunConfig
    /// Floats in one head's flat A|B factors (nil when the run has no adapters, e.g. FedAvg).
    let factorCount: Int?
    let replicatedCount: Int
    /// Largest |value| a push may carry (finite values far beyond the model's scale are as poisonous
    /// as NaN: 1e30 overflows in the merge).
    let maxAbsValue: Float

    func checkWorker(_ worker: String) throws(Refusal) {
        guard MergeHistory.isValidWorkerName(worker) else {
            throw Refusal(code: .unauthorized, message: "worker name \(worker.prefix(80).debugDescription) is not 1–\(MergeHistory.maxWorkerNameBytes) letters, digits, '.', '_' or '-'")
        }
    }

    func checkHeads(_ heads: [Int]) throws(Refusal) {
        if heads.isEmpty { throw Refusal(code: .unknownHead, message: "no head ids") }
        if Set(heads).count != heads.count { throw Refusal(code: .unknownHead, message: "duplicate head ids \(heads)") }
        if let bad = heads.first(where: { $0 < 0 || $0 >= descriptor.totalHeads }) {
            throw Refusal(code: .unknownHead, message: "unknown head \(bad) (this run has heads 0…\(descriptor.totalHeads - 1))")
        }
    }

    func checkHello(_ h: HelloMessage) throws(Refusal) {
        try checkWorker(h.workerId)
        if h.headIds.isEmpty && h.maxHeads > 0 { return }   // `--heads auto`: the server picks (Membership)
        try checkHeads(h.headIds)
    }

    /// Tokens an honest worker reports for `heads` heads over one round: each head trains
    /// `merge_every` steps of `batch_size` sequences of the model's context length.
    func tokensPerRound(heads: Int) -> Int {
        heads * descriptor.training.batchSize * descriptor.model.contextLength * descriptor.mergeEvery
    }

    /// Checks everything in a push that does not depend on the open round; returns its heads parsed.
    func checkPush(_ p: PushMessage) throws(Refusal) -> [Head] {
        let from = "push from \(p.workerId) for round \(p.round)"
        try checkWorker(p.workerId)
        do throws(Refusal) { try checkHeads(p.headIds) } catch { throw Refusal(code: error.code, message: "\(from): \(error.message)") }
        guard p.headLosses.count == p.headIds.count else {
            throw Refusal(code: .wrongShape, message: "\(from): \(p.headLosses.count) losses for \(p.headIds.count) heads")
        }
        let expectedTokens = tokensPerRound(heads: p.headIds.count)
        guard p.tokens == expectedTokens else {
            throw Refusal(code: .wrongShape, message: "\(from): reports \(p.tokens) tokens, the run's settings give \(expectedTokens) for \(p.headIds.count) heads")
        }
        // Exactly the tensors this run's model implies: none missing, none extra, each flat with the right count.
        var expected: [String: Int] = [:]
        for h in p.headIds {
            if let factorCount { expected[WireNames.factors(h)] = factorCount }
            expected[WireNames.replicated(h)] = replicatedCount
        }
        for t in p.tensors {
            guard let count = expected[t.name] else {
                throw Refusal(code: .wrongShape, message: "\(from): unexpected tensor '\(WireText.quote(t.name))'")
            }
            guard t.shape == [count] else {
                throw Refusal(code: .wrongShape, message: "\(from): tensor \(WireText.quote(t.name)) has shape \(t.shape), the run's model needs [\(count)]")
            }
        }
        if let missing = expected.keys.sorted().first(where: { !p.tensors.has($0) }) {
            throw Refusal(code: .wrongShape, message: "\(from): lacks tensor \(missing)")
        }
        // NaN/Inf anywhere refuses the whole push: one diverged head must not poison the merge.
        do { try p.validateFinite() } catch let e as WireError {
            throw Refusal(code: .nonFinite, message: "\(from): \(e.message); its heads sit this round out")
        } catch {
            throw Refusal(code: .nonFinite, message: "\(from): \(error)")
        }
        var heads: [Head] = []
        let format = descriptor.lte.pushFormat
        for (i, h) in p.headIds.enumerated() {
            // The values in f32, else their change in the push format (`ReplicatedDelta`).
            let replicatedBytes: QuantizedTensor
            do { replicatedBytes = try p.tensors.quantized(WireNames.replicated(h), count: replicatedCount, format: format) } catch {
                throw Refusal(code: .wrongShape, message: "\(from): \(error)")
            }
            let replicated = replicatedBytes.values
            if let bad = replicated.firstIndex(where: { !$0.isFinite }) {
                throw Refusal(code: .nonFinite, message: "\(from): tensor \(WireNames.replicated(h)) element \(bad) is not finite once dequantized; its heads sit this round out")
            }
            var factors: PushedFactors?
            if let factorCount {
                do { factors = try p.tensors.pushedFactors(WireNames.factors(h), count: factorCount, format: descriptor.lte.pushFormat) } catch {
                    throw Refusal(code: .wrongShape, message: "\(from): \(error)")
                }
                if let bad = factors?.firstNonFiniteIndex {
                    throw Refusal(code: .nonFinite, message: "\(from): tensor \(WireNames.factors(h)) element \(bad) is not finite once dequantized; its heads sit this round out")
                }
            }
            // Finite is not enough: one huge head would overflow the merge (the values as merged, dequantized).
            for (name, values) in [(WireNames.factors(h), factors?.values.array ?? []), (WireNames.replicated(h), replicated)] {
                if let k = values.firstIndex(where: { abs($0) > maxAbsValue }) {
                    throw Refusal(code: .outOfBounds, message: "\(from): tensor \(name) element \(k) is \(values[k]), beyond the run's bound ±\(maxAbsValue); its heads sit this round out")
                }
            }
            heads.append(Head(head: h, factors: factors,
                              replicated: format == .f32 ? .values(FloatBuffer(replicated)) : .change(ReplicatedDelta(received: replicatedBytes)),
                              loss: p.headLosses[i]))
        }
        return heads
    }
}
