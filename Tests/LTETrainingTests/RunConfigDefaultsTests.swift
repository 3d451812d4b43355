import Foundation
import LTEBase
import LTEData
import LTEModel
import XCTest
@testable import LTETraining

/// RunConfigTests of the lte settings a config leaves out (RunConfig+Defaults): derived from the model, lte.heads,
/// lte.alpha and the training rate; given values win; the values used are what the config encodes.
extension RunConfigTests {
    /// `minimal`'s model section (width 64, FFN 96: the widest wrapped layer is 96 wide, the
    /// narrowest input 64), to write configs around.
    private var model: String { String(minimal.dropFirst().dropLast()) }

    func testAbsentSettingsAreDerivedFromTheModelHeadsAlphaAndTheTrainingRate() throws {
        let c = try decode("{\(model), \"training\": {\"learning_rate\": 3e-4}, \"lte\": {\"heads\": 2, \"alpha\": 1024}}")
        XCTAssertEqual(c.lte.rank, 48, "2 heads × 48 ≥ 96, a multiple of 8")
        let s: Float = 1024 / 48
        XCTAssertEqual(c.lte.learningRate, 2 * Float(3e-4) / s)
        XCTAssertEqual(c.lte.replicatedLearningRate, 2 * Float(3e-4), "N × the training rate")
        // The rank follows the heads, in multiples of 8, and never passes the narrowest input width.
        for (heads, rank) in [(1, 64), (3, 32), (4, 24), (8, 16), (12, 8), (100, 8)] {
            XCTAssertEqual(try decode("{\(model), \"lte\": {\"heads\": \(heads)}}").lte.rank, rank, "\(heads) heads")
            XCTAssertEqual(try decode("{\(model)}", overrides: ["lte.heads=\(heads)"]).lte.rank, rank, "\(heads) heads as an override")
        }
        // No lte section at all: the section's defaults (8 heads, α 4096), the rest derived.
        let bare = try decode("{\(model)}")
        XCTAssertEqual(bare.lte.heads, 8)
        XCTAssertEqual(bare.lte.rank, 16)
        XCTAssertEqual(bare.lte.learningRate, 2 * TrainingConfig().learningRate / (4096 / 16))
        XCTAssertEqual(bare.lte.replicatedLearningRate, 8 * TrainingConfig().learningRate)
        // A null is taken as absent, like a left-out key.
        XCTAssertEqual(try decode("{\(model), \"lte\": {\"heads\": 2, \"rank\": null, \"learning_rate\": null}}").lte.rank, 48)
    }

    func testGivenValuesWin() throws {
        let c = try decode("{\(model), \"lte\": {\"heads\": 2, \"rank\": 8, \"learning_rate\": 1e-5, \"replicated_learning_rate\": 2e-4}}")
        XCTAssertEqual(c.lte.rank, 8)
        XCTAssertEqual(c.lte.learningRate, 1e-5)
        XCTAssertEqual(c.lte.replicatedLearningRate, 2e-4)
        let overridden = try decode("{\(model), \"lte\": {\"heads\": 2}}", overrides: ["lte.rank=16", "lte.learning_rate=5e-5"])
        XCTAssertEqual(overridden.lte.rank, 16)
        XCTAssertEqual(overridden.lte.learningRate, 5e-5)
        XCTAssertEqual(overridden.lte.replicatedLearningRate, 2 * TrainingConfig().learningRate, "the one left out is still derived")
    }

    /// config.json (and the history's root commit, and a welcome) spell the derived values out, so
    /// reading it back gives the same config even where the rule would now give others.
    func testTheValuesUsedAreRecorded() throws {
        let c = try decode("{\(model), \"lte\": {\"heads\": 2}}")
        let json = try JSONSerialization.jsonObject(with: c.encoded()) as! [String: [String: Any]]
        XCTAssertEqual((json["lte"]?["rank"] as? NSNumber)?.intValue, 48)
        XCTAssertEqual((json["lte"]?["learning_rate"] as? NSNumber)?.floatValue, c.lte.learningRate)
        XCTAssertEqual((json["lte"]?["replicated_learning_rate"] as? NSNumber)?.floatValue, c.lte.replicatedLearningRate)
        XCTAssertEqual(try RunConfig.decode(c.encoded(), source: "config.json"), c)
        // Recorded values are given values: more heads or another training rate over them change nothing else.
        let resumed = try RunConfig.decode(c.encoded(), source: "config.json", overrides: ["lte.heads=8", "training.learning_rate=1e-2"])
        XCTAssertEqual(resumed.lte.rank, 48)
        XCTAssertEqual(resumed.lte.learningRate, c.lte.learningRate)
        XCTAssertEqual(resumed.lte.replicatedLearningRate, c.lte.replicatedLearningRate)
    }

    func testBadRatesAreRefusedWithTheKey() throws {
        for (key, value) in [("learning_rate", "-1e-5"), ("learning_rate", "0"), ("replicated_learning_rate", "-2"), ("replicated_learning_rate", "0")] {
            XCTAssertThrowsError(try decode("{\(model)}", overrides: ["lte.\(key)=\(value)"]), "\(key)=\(value)") { error in
                let message = (error as? LTEError)?.message ?? ""
                XCTAssertTrue(message.contains("lte.\(key) must be positive"), message)
                XCTAssertFalse(message.contains("\n"), "one line: \(message)")
            }
        }
        XCTAssertThrowsError(try decode("{\(model), \"lte\": {\"replicated_learning_rate\": \"fast\"}}")) { error in
            XCTAssertTrue(((error as? LTEError)?.message ?? "").contains("lte.replicated_learning_rate"), "\(error)")
        }
    }

    /// A replica's replicated tensors step at lte.replicated_learning_rate: AdamW's first step is
    /// linear in the rate (lr·(g/(|g|+ε) + wd·p)), so half the rate moves them half as far; the
    /// training rate given explicitly is the same bits as leaving it unset.
    func testReplicatedTensorsStepAtTheirOwnRate() throws {
        let t = LTEIdentityTests.training(iterations: 1)
        var l = LTEIdentityTests.lora(heads: 2, mergeEvery: 100)
        l.wrapLMHead = false
        func firstStepChange(_ rate: Float?) throws -> [Float] {
            var lora = l
            lora.replicatedLearningRate = rate
            let run = try ReplicaTrainer(mode: .lte, model: LTEIdentityTests.model, config: t, lora: lora,
                                         makeSource: { i in RandomBatches(batchSize: 2, contextLength: 8, vocabSize: 17, seed: UInt64(i + 1)) },
                                         validation: { RandomBatches(batchSize: 2, contextLength: 8, vocabSize: 17, seed: 99) })
            let before = run.main.packReplicated(run.replicas[0].model.params.pointer)
            _ = run.trainStep(iteration: 0)
            let after = run.main.packReplicated(run.replicas[0].model.params.pointer)
            return (0..<after.count).map { after[$0] - before[$0] }
        }
        let unset = try firstStepChange(nil), same = try firstStepChange(t.learningRate), half = try firstStepChange(t.learningRate / 2)
        XCTAssertEqual(unset, same)
        XCTAssertGreaterThan(unset.map(abs).max() ?? 0, 1e-4, "the step moves the replicated tensors")
        var worst: Float = 0
        for (u, h) in zip(unset, half) { worst = max(worst, abs(h - u / 2)) }
        XCTAssertLessThan(worst, 1e-3 * (unset.map(abs).max() ?? 0), "half the rate, half the step")
    }
}

extension RunConfigTests {
    /// A config a run recorded before the rule (no lte.learning_rate, rank left out) keeps the
    /// meaning it was written with when read as recorded: the training rate, rank 16.
    func testARecordedConfigIsReadAsWritten() throws {
        let earlier = Data("{\(model), \"lte\": {\"heads\": 2}}".utf8)
        let recorded = try RunConfig.decode(earlier, source: "config.json", derivingDefaults: false)
        XCTAssertEqual(recorded.lte.rank, LoRAConfig().rank)
        XCTAssertNil(recorded.lte.learningRate)
        XCTAssertNil(recorded.lte.replicatedLearningRate)
        XCTAssertEqual(try RunConfig.decode(earlier, source: "config.json").lte.rank, 48, "the same JSON as a user's config is derived")
    }
}
