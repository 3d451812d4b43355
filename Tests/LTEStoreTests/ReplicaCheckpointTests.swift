import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics
import LTETestSupport
import LTETraining
import XCTest
@testable import LTEStore

/// A replicated run (lte, lora, lora-merge, fedavg) saved in a checkpoint between two merges and
/// restored into a new trainer ends on the same bits as the run that was never interrupted.
final class ReplicaCheckpointTests: XCTestCase {
    static let model = ModelConfig(vocabSize: 19, dim: 16, layers: 2, heads: 2, ffnDim: 32, contextLength: 8)
    static let iterations = 24, interruptedAt = 14   // merges every 5: step 14 is inside round 3

    static var training: TrainingConfig {
        var t = TrainingConfig()
        t.iterations = iterations; t.batchSize = 2; t.learningRate = 3e-3; t.minLearningRate = 3e-4
        t.warmupIterations = 4; t.evalInterval = 0; t.checkpointInterval = interruptedAt
        return t
    }

    static func lora(merge: LoRAConfig.MergeRule = .resetless, overlap: Bool = false, pushFormat: QuantizedFormat = .f32) -> LoRAConfig {
        var l = LoRAConfig()
        l.heads = 3; l.rank = 2; l.alpha = 8; l.mergeEvery = 5; l.merge = merge; l.overlap = overlap; l.pushFormat = pushFormat
        return l
    }

    private var shard: TokenShard!

    override func setUpWithError() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("train.bin")
        try TokenShard.write((0..<6000).map { Int32(($0 * 7 + $0 / 5) % Self.model.vocabSize) }, vocabSize: Self.model.vocabSize, to: url)
        shard = try TokenShard(contentsOf: url, vocabSize: Self.model.vocabSize)
    }

    private func makeTrainer(_ mode: TrainingMode, _ lora: LoRAConfig) throws -> ReplicaTrainer<BatchSampler> {
        let n = mode.replicaCount(heads: lora.heads), shard = shard!, t = Self.training
        let sampler = { (i: Int) in try BatchSampler.forHead(i, of: n, train: shard, batchSize: t.batchSize,
                                                              contextLength: Self.model.contextLength, seed: t.seed) }
        return try ReplicaTrainer(mode: mode, model: Self.model, config: t, lora: lora, makeSource: sampler,
                                  validation: { try! sampler(0) })
    }

    /// Runs `mode` whole, saving a checkpoint at `interruptedAt`; then a new trainer resumes from it.
    private func assertResumesBitIdentically(_ mode: TrainingMode, _ lora: LoRAConfig, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try makeTemporaryDirectory().appendingPathComponent("checkpoint")
        let whole = try makeTrainer(mode, lora)
        try TrainingLoop(config: Self.training, metrics: nil).run(whole) { step in
            guard step == Self.interruptedAt else { return }
            try Checkpoint.save(model: whole.main.model, state: TrainerState(step: step, tokens: whole.tokensSeen, seed: Self.training.seed),
                                replicas: whole.runState(), to: dir)
        }
        if whole.syncEvery != nil { XCTAssertGreaterThan(whole.merges, 3, file: file, line: line) }   // lora never merges

        let resumed = try makeTrainer(mode, lora)
        try resumed.restore(try Checkpoint(at: dir).replicaState(), source: "test checkpoint")
        for r in resumed.replicas { r.source.skip(batches: Self.interruptedAt) }
        try TrainingLoop(config: Self.training, metrics: nil).run(resumed, from: Self.interruptedAt)

        XCTAssertEqual(resumed.merges, whole.merges, file: file, line: line)
        XCTAssertEqual(resumed.tokensSeen, whole.tokensSeen, file: file, line: line)
        XCTAssertTrue(resumed.main.model.params.array == whole.main.model.params.array, "\(mode): main weights differ", file: file, line: line)
        for (a, b) in zip(resumed.replicas, whole.replicas) {
            XCTAssertTrue(a.model.params.array == b.model.params.array, "\(mode): replica \(a.id) differs", file: file, line: line)
            XCTAssertTrue(a.head?.factors.array == b.head?.factors.array, "\(mode): head \(a.id)'s factors differ", file: file, line: line)
        }
        // Not vacuous: a fresh trainer run from the same step without the state ends elsewhere.
        let fresh = try makeTrainer(mode, lora)
        for r in fresh.replicas { r.source.skip(batches: Self.interruptedAt) }
        try TrainingLoop(config: Self.training, metrics: nil).run(fresh, from: Self.interruptedAt)
        XCTAssertFalse(fresh.main.model.params.array == whole.main.model.params.array && fresh.replicas[0].model.params.array == whole.replicas[0].model.params.array,
                       file: file, line: line)
    }

    func testLTEResumesBitIdentically() throws { try assertResumesBitIdentically(.lte, Self.lora()) }
    func testResetBResumesBitIdentically() throws { try assertResumesBitIdentically(.lte, Self.lora(merge: .resetB)) }
    /// With `lte.overlap` the checkpoint falls between round 2's push and its merge: the round in
    /// flight, its int8 bytes included, is part of the state.
    func testOverlappedInt8RoundInFlightResumesBitIdentically() throws {
        try assertResumesBitIdentically(.lte, Self.lora(overlap: true, pushFormat: .int8))
    }
    func testLoRAResumesBitIdentically() throws { try assertResumesBitIdentically(.lora, Self.lora()) }
    func testLoRAMergeResumesBitIdentically() throws { try assertResumesBitIdentically(.loraMerge, Self.lora()) }
    func testFedAvgResumesBitIdentically() throws { try assertResumesBitIdentically(.fedavg, Self.lora()) }

    /// A state of another mode or another shape is refused in one line, before anything trains.
    func testAStateOfAnotherRunIsRefused() throws {
        let lte = try makeTrainer(.lte, Self.lora())
        _ = lte.trainStep(iteration: 0)
        let state = lte.runState()
        assertLTEError(try makeTrainer(.fedavg, Self.lora()).restore(state, source: "saved"), contains: "made by --mode lte", "--mode fedavg")
        var wider = Self.lora(); wider.rank = 4
        assertLTEError(try makeTrainer(.lte, wider).restore(state, source: "saved"), contains: "saved: head.0.factors holds")
        var missing = state
        missing.tensors.removeAll { $0.name == "head.1.adam_v" }
        assertLTEError(try makeTrainer(.lte, Self.lora()).restore(missing, source: "saved"), contains: "saved has no head.1.adam_v")
    }
}
