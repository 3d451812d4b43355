import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETestSupport
import LTEData
import XCTest
@testable import LTETraining

/// The data sources a `Trainer` reads: the training sampler (with fast-forward for resuming) and the
/// fixed validation batches; and the token sampler used to generate text.
final class BatchSourceTests: XCTestCase {
    private func shard(_ n: Int, vocab: Int) throws -> TokenShard {
        let url = try makeTemporaryDirectory().appendingPathComponent("s.bin")
        try TokenShard.write((0..<n).map { Int32(($0 * 7 + $0 / 3) % vocab) }, vocabSize: vocab, to: url)
        return try TokenShard(contentsOf: url, vocabSize: vocab)
    }

    private func draw<S: BatchSource>(_ source: inout S, batches: Int) -> [Int32] {
        let n = source.batchSize * source.contextLength
        var out: [Int32] = []
        var inputs = [Int32](repeating: 0, count: n), targets = [Int32](repeating: 0, count: n)
        for _ in 0..<batches {
            inputs.withUnsafeMutableBufferPointer { i in
                targets.withUnsafeMutableBufferPointer { t in source.next(inputs: i.baseAddress!, targets: t.baseAddress!) }
            }
            out += inputs + targets
        }
        return out
    }

    func testSkippingBatchesLandsWhereReadingThemWould() throws {
        let tokens = try shard(5000, vocab: 31)
        var read = try BatchSampler(tokens: tokens, batchSize: 3, contextLength: 8, seed: 4, stream: 1)
        var skipped = read
        _ = draw(&read, batches: 17)
        skipped.skip(batches: 17)
        XCTAssertEqual(draw(&skipped, batches: 5), draw(&read, batches: 5))
        var fresh = try BatchSampler(tokens: tokens, batchSize: 3, contextLength: 8, seed: 4, stream: 1)
        XCTAssertNotEqual(draw(&fresh, batches: 5), draw(&read, batches: 5), "skipping moved the sampler")
    }

    func testEvaluationSourceRepeatsTheSameBatchesFromEachFreshStart() throws {
        let tokens = try shard(3000, vocab: 31)
        let batches = try EvaluationBatches(tokens: tokens, batches: 4, batchSize: 2, contextLength: 8, seed: 3)
        var a = batches.source(), b = batches.source()
        let first = draw(&a, batches: 4)
        XCTAssertEqual(draw(&b, batches: 4), first)
        XCTAssertEqual(draw(&a, batches: 4), first, "after the last batch it starts over")
        var expected: [Int32] = []
        var inputs = [Int32](repeating: 0, count: 16), targets = [Int32](repeating: 0, count: 16)
        for i in 0..<4 {
            batches.fill(batch: i, inputs: &inputs, targets: &targets)
            expected += inputs + targets
        }
        XCTAssertEqual(first, expected)
    }

    func testTrainerTrainsOnASamplerAndEvaluatesOnFixedBatches() throws {
        let tokens = try shard(4000, vocab: 31)
        let config = ModelConfig(vocabSize: 31, dim: 16, layers: 1, heads: 2, ffnDim: 32, contextLength: 8)
        let model = try Transformer(config: config)
        model.initialize(seed: 1)
        var t = TrainingConfig()
        t.evalIterations = 3
        let sampler = try BatchSampler(tokens: tokens, batchSize: 2, contextLength: 8, seed: 1)
        let validation = try EvaluationBatches(tokens: tokens, batches: 3, batchSize: 2, contextLength: 8, seed: 1)
        let trainer = Trainer(model: model, config: t, source: sampler, validation: { validation.source() })
        let before = trainer.validationLoss()
        XCTAssertEqual(trainer.validationLoss(), before, "every evaluation sees the same batches")
        for i in 0..<30 { _ = trainer.trainStep(iteration: i) }
        XCTAssertLessThan(trainer.validationLoss(), before)
        XCTAssertEqual(trainer.tokensSeen, 30 * 16)
    }

    func testTokenSamplerIsGreedyAtZeroTemperatureAndReproducibleOtherwise() throws {
        let logits: [Float] = [0.1, 2.0, -1.0, 1.9, 0.0]
        var greedy = try TokenSampler(temperature: 0, seed: 1)
        XCTAssertEqual(greedy.next(logits: logits, vocab: 5), 1)
        var top1 = try TokenSampler(temperature: 5, topK: 1, seed: 1)
        XCTAssertEqual((0..<20).map { _ in top1.next(logits: logits, vocab: 5) }, Array(repeating: 1, count: 20))
        var top2 = try TokenSampler(temperature: 1, topK: 2, seed: 7)
        let draws = (0..<200).map { _ in top2.next(logits: logits, vocab: 5) }
        XCTAssertEqual(Set(draws), [1, 3], "top-2 draws only the two most likely")
        var again = try TokenSampler(temperature: 1, topK: 2, seed: 7)
        XCTAssertEqual((0..<200).map { _ in again.next(logits: logits, vocab: 5) }, draws)
        assertLTEError(try TokenSampler(temperature: -1, seed: 1), contains: "temperature")
    }

    func testGenerationSlidesPastTheContextWindow() throws {
        let config = ModelConfig(vocabSize: 11, dim: 16, layers: 1, heads: 2, ffnDim: 32, contextLength: 8)
        let model = try Transformer(config: config)
        model.initialize(seed: 2)
        var sampler = try TokenSampler(temperature: 0, seed: 1)
        let generator = TextGenerator(model: model)
        let out = generator.generate(prompt: [1, 2, 3], count: 20, sampler: &sampler)
        XCTAssertEqual(out.count, 20)
        XCTAssertTrue(out.allSatisfy { $0 >= 0 && $0 < 11 })
        // Greedy generation is a function of the last 8 tokens only: restarting from any window of the
        // text continues it identically.
        let text: [Int32] = [1, 2, 3] + out
        var again = try TokenSampler(temperature: 0, seed: 1)
        XCTAssertEqual(generator.generate(prompt: Array(text[7..<15]), count: 8, sampler: &again), Array(text[15..<23]))
    }
}
