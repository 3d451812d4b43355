import Foundation
import LTEBase
import LTEModel
import LTENet
import LTENumerics
import LTETraining

/// Joining a run: the welcome a worker takes (settings, weights, merged factors, its heads' state,
/// the outer optimizer's velocity) and the check of the frozen weights it then holds.
extension WorkerCore {
    /// The part of a welcome a worker keeps. Returning drops the message, as large as the weights,
    /// before the heads' own memory is allocated (the worker's peak RSS).
    struct Joined {
        let runId: String
        let descriptor: RunConfig
        let main: MainWeights
        let baseCommit: String
        let weightsHash: WeightsDigest
        let factors: [Int: FloatBuffer]
        /// Heads handed over by a worker that left cleanly: their whole training state.
        let states: [Int: HeadTrainingState]
    }

    /// Says hello and takes the welcome: the run's settings, the main weights and last-merged factors
    /// (into `keeping` when rejoining, else into new main weights), and this worker's heads' factors.
    func welcome(over exchange: Exchange, into keeping: MainWeights?) throws -> Joined {
        let reply = try askForHeads(over: exchange)
        guard case .welcome(let w) = reply else {
            if case .error(let e) = reply { throw LTEError("the server refused worker \(id): \(e.message)") }
            throw LTEError("the server answered hello with \(reply.type)")
        }
        let d = try RunConfig.fromServer(w.configJSON)
        guard d.model.vocabSize >= vocabSize else {
            throw LTEError("data \(train.url.deletingLastPathComponent().path) has a vocabulary of \(vocabSize), the run's model \(d.model.vocabSize)")
        }
        // With quantized frozen weights a worker holds them quantized only: the server merges W and
        // sends them requantized with every answer.
        if keeping == nil {
            try MemoryBudget.worker(d.model, lora: d.lte, heads: max(1, w.headIds.isEmpty ? heads.count : w.headIds.count), totalHeads: d.totalHeads,
                                    batch: d.training.batchSize, recompute: d.training.recompute, holdsFrozenMaster: d.lte.frozenWeights == .f32)
                .requireAvailable(for: "worker \(id) (a model of \(ParameterLayout(d.model).count) parameters)")
        }
        let main = try keeping ?? MainWeights(model: d.model, lora: d.lte, totalHeads: d.totalHeads, seed: d.training.seed,
                                              holdsFrozenMaster: d.workersHoldFrozenMaster)
        let values = try w.tensors.flat(WireNames.main, count: main.model.params.count)
        values.withUnsafeBufferPointer { main.model.params.pointer.update(from: $0.baseAddress!, count: values.count) }
        let joinedHash = main.weightsHash
        main.weightsWritten()
        // A worker that merges W itself steps it with the run's outer optimizer from the server's velocity.
        if let outer = main.outer {
            let velocity = try w.tensors.flat(WireNames.velocity, count: outer.packedCount)
            velocity.withUnsafeBufferPointer { outer.unpackVelocity($0.baseAddress!) }
        }
        try checkFrozen(main, against: w.frozenHash, "after quantizing the weights of round \(w.round)")
        let factorCount = main.layout?.count ?? 0
        for h in 0..<d.totalHeads where w.tensors.has(WireNames.merged(h)) {
            let merged = try w.tensors.flat(WireNames.merged(h), count: factorCount)
            merged.withUnsafeBufferPointer { main.setLastMerged(head: h, from: $0.baseAddress!) }
        }
        main.setRound(w.round)
        if keeping == nil, !w.headIds.isEmpty { heads = w.headIds }
        var factors: [Int: FloatBuffer] = [:]
        for h in heads where w.tensors.has(WireNames.factors(h)) {
            factors[h] = try w.tensors.buffer(WireNames.factors(h), count: factorCount)
        }
        let replicaMoments = main.replicatedCount
        var states: [Int: HeadTrainingState] = [:]
        for (h, step) in zip(w.headIds, w.optimizerSteps) where step > 0 {
            states[h] = try HeadStateNames.state(head: h, step: step, from: w.tensors, factorCount: factorCount, replicaMomentCount: replicaMoments)
        }
        // The weights it now holds, e.g. the final ones when it rejoins a run that ended meanwhile
        // (hashed before a worker without the master gave its float32 frozen pages back).
        return Joined(runId: w.runId, descriptor: d, main: main,
                      baseCommit: w.baseCommit, weightsHash: joinedHash, factors: factors, states: states)
    }

    /// The second hash (`lte.frozen_weights` int8 or nf4): the frozen weights this worker's heads
    /// read, quantized here or taken from the server, against the server's hash of its own. A
    /// mismatch stops the worker before a head trains on other weights than the run's.
    func checkFrozen(_ main: MainWeights, against served: WeightsDigest?, _ when: String) throws {
        guard let held = main.frozenHash else { return }
        guard let served else { throw LTEError("\(when) the server sent no hash of the frozen \(main.lora!.frozenWeights.rawValue) weights to check") }
        guard held == served else {
            throw LTEError("\(when) this worker's frozen \(main.lora!.frozenWeights.rawValue) weights hash \(held.short) differs from the server's \(served.short)")
        }
    }
}
