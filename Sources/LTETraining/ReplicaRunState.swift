import Foundation
import LTEBase
import LTENumerics

/// Everything an in-process replicated run (`ReplicaTrainer`: lte, lora, lora-merge, fedavg) holds
/// between two steps that its config and data do not determine, so that `lte train --resume`
/// continues bit for bit: the main weights and every head's factors as of its last merge (the
/// server's part), each replica's replicated tensors, factors, correction Vᵢ and both AdamWs (the
/// workers' part), a round pushed but not yet merged (`lte.overlap`), and the counters.
/// The data positions are not stored: each replica draws one batch per step, so they follow from
/// the step (`BatchSampler.skip`).
///
/// Named float tensors and string metadata, so a checkpoint stores it without knowing the trainer.
public struct ReplicaRunState {
    public var tensors: [(name: String, values: FloatBuffer)]
    public var metadata: [String: String]

    public init(tensors: [(name: String, values: FloatBuffer)], metadata: [String: String]) {
        self.tensors = tensors; self.metadata = metadata
    }
}

extension ReplicaTrainer {
    /// The run's state as of the last step taken.
    public func runState() -> ReplicaRunState {
        var tensors: [(String, FloatBuffer)] = [("main.weights", main.model.params)]
        for (h, factors) in main.lastMerged.enumerated() { if let factors { tensors.append(("main.last_merged.\(h)", factors)) } }
        var metadata = ["mode": mode.rawValue, "round": String(main.round), "tokens_seen": String(tokensSeen),
                        "bytes_communicated": String(bytesCommunicated)]
        for r in replicas {
            tensors += [("replica.\(r.id).replicated", main.packReplicated(r.model.params.pointer)),
                        ("replica.\(r.id).adam_m", r.optimizer.m), ("replica.\(r.id).adam_v", r.optimizer.v)]
            metadata["replica.\(r.id).adam_step"] = String(r.optimizer.step)
            if let head = r.head, let o = r.headOptimizer {
                tensors += [("head.\(r.id).factors", head.factors), ("head.\(r.id).merged", head.merged),
                            ("head.\(r.id).adam_m", o.m), ("head.\(r.id).adam_v", o.v)]
                metadata["head.\(r.id).adam_step"] = String(o.step)
            }
        }
        if let pushed = inFlight {
            metadata["in_flight.heads"] = pushed.heads.map(String.init).joined(separator: ",")
            for (k, h) in pushed.heads.enumerated() {
                tensors.append(("in_flight.\(h).replicated", pushed.replicated[k]))
                // The pushed bytes, not their values: re-quantizing dequantized values is not exact.
                if let f = pushed.factors[k] {
                    metadata["in_flight.\(h).format"] = f.quantized.format.rawValue
                    metadata["in_flight.\(h).factors"] = Data(f.quantized.bytes).base64EncodedString()
                }
            }
        }
        return ReplicaRunState(tensors: tensors, metadata: metadata)
    }

    /// Takes over a state `runState()` gave, on a trainer made with the same config; the data
    /// positions are the caller's (`BatchSampler.skip`). `source` names the state in errors.
    public func restore(_ state: ReplicaRunState, source: String) throws {
        let byName = Dictionary(state.tensors.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a })
        func fill(_ target: FloatBuffer, _ name: String) throws {
            guard let values = byName[name] else { throw LTEError("\(source) has no \(name), which this run needs") }
            guard values.count == target.count else {
                throw LTEError("\(source): \(name) holds \(values.count) values, this run needs \(target.count) (a run of another config)")
            }
            target.copy(from: values)
        }
        func integer(_ key: String) throws -> Int {
            guard let raw = state.metadata[key], let value = Int(raw), value >= 0 else {
                throw LTEError("\(source) has no valid \"\(key)\" in its metadata")
            }
            return value
        }
        guard state.metadata["mode"] == mode.rawValue else {
            throw LTEError("\(source) was made by --mode \(state.metadata["mode"] ?? "?"), not --mode \(mode.rawValue); resume it with --mode \(state.metadata["mode"] ?? "?")")
        }
        try fill(main.model.params, "main.weights")
        main.weightsWritten()
        for h in 0..<main.totalHeads {
            if let values = byName["main.last_merged.\(h)"] {
                guard let count = main.layout?.count, values.count == count else { throw LTEError("\(source): main.last_merged.\(h) has the wrong size") }
                withExtendedLifetime(values) { main.setLastMerged(head: h, from: values.pointer) }
            }
        }
        main.setRound(try integer("round"))
        for r in replicas {
            let packed = FloatBuffer(count: main.replicatedCount)
            try fill(packed, "replica.\(r.id).replicated")
            withExtendedLifetime(packed) {
                var i = 0
                for (offset, count) in r.copied {
                    (r.model.params.pointer + offset).update(from: packed.pointer + i, count: count); i += count
                }
            }
            try fill(r.optimizer.m, "replica.\(r.id).adam_m"); try fill(r.optimizer.v, "replica.\(r.id).adam_v")
            r.optimizer.step = try integer("replica.\(r.id).adam_step")
            if let head = r.head, let o = r.headOptimizer {
                try fill(head.factors, "head.\(r.id).factors")
                let merged = FloatBuffer(count: head.merged.count)
                try fill(merged, "head.\(r.id).merged")
                withExtendedLifetime(merged) { head.setMerged(from: merged.pointer) }   // also marks the head unfolded
                try fill(o.m, "head.\(r.id).adam_m"); try fill(o.v, "head.\(r.id).adam_v")
                o.step = try integer("head.\(r.id).adam_step")
            }
        }
        tokensSeen = try integer("tokens_seen")
        bytesCommunicated = try integer("bytes_communicated")
        inFlight = try restoredInFlight(state, byName: byName, source: source)
        if let inFlight { awaitMerge(of: inFlight) }
    }

    private func restoredInFlight(_ state: ReplicaRunState, byName: [String: FloatBuffer], source: String) throws -> PushedRound? {
        guard let list = state.metadata["in_flight.heads"] else { return nil }
        let heads = list.split(separator: ",").compactMap { Int($0) }
        guard !heads.isEmpty, heads.allSatisfy(replicas.indices.contains) else { throw LTEError("\(source): \"in_flight.heads\" is not valid") }
        var factors: [PushedFactors?] = [], replicated: [FloatBuffer] = []
        for h in heads {
            guard let r = byName["in_flight.\(h).replicated"], r.count == main.replicatedCount else {
                throw LTEError("\(source) has no valid in_flight.\(h).replicated")
            }
            replicated.append(r)
            guard let layout = main.layout, mode.usesAdapters else { factors.append(nil); continue }
            guard let raw = state.metadata["in_flight.\(h).format"], let format = QuantizedFormat(rawValue: raw),
                  let base64 = state.metadata["in_flight.\(h).factors"], let bytes = Data(base64Encoded: base64),
                  let q = QuantizedTensor(format: format, count: layout.count, bytes: [UInt8](bytes), blockSize: format.pushedBlockSize) else {
                throw LTEError("\(source) has no valid pushed factors of head \(h) (in_flight.\(h))")
            }
            factors.append(PushedFactors(received: q))
        }
        return PushedRound(heads: heads, factors: factors, replicated: replicated)
    }
}
