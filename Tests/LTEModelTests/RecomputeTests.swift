import XCTest
@testable import LTEModel
import LTENumerics

/// Activation recomputation (`training.recompute = blocks`) keeps each block's input only and runs
/// the block again before its backward: the loss and every gradient are the same bits, in less memory.
final class RecomputeTests: XCTestCase {
    func testDenseGradientsAreBitIdentical() throws {
        let c = GradientCheckTests.tiny
        var results: [(Float, [UInt32])] = []
        for recompute in [false, true] {
            let model = try GradientCheckTests.makeModel(c)
            let acts = Activations(config: c, batch: 2, seqLen: 8, recomputesBlocks: recompute)
            let (tokens, targets) = GradientCheckTests.batch(c, b: 2, t: 8, seed: 12)
            model.zeroGrad()
            let loss = model.forward(acts, tokens: tokens, targets: targets)
            model.backward(acts)
            results.append((loss, model.grads.array.map(\.bitPattern)))
        }
        XCTAssertEqual(results[0].0.bitPattern, results[1].0.bitPattern)
        XCTAssertEqual(results[0].1, results[1].1)
        XCTAssertTrue(results[0].1.contains { $0 != 0 })
    }

    /// A folded LTE head over frozen W: its factor gradients and the replicated tensors' too.
    func testFoldedHeadGradientsAreBitIdentical() throws {
        let c = LoRAHeadTests.config
        var results: [[UInt32]] = []
        for recompute in [false, true] {
            let base = try GradientCheckTests.makeModel(c)
            let layout = LoRALayout(model: c, layout: base.layout, rank: 8, wrapLMHead: true)
            let lane = LayerFold(store: base.params, model: c, layout: base.layout, frozen: layout.wrappedTensorNames, adapters: layout)
            let model = try Transformer(config: c, trainable: { !layout.wrappedTensorNames.contains($0.name) }, frozenSource: lane)
            model.params.copy(from: base.params)
            let head = LoRAHead(layout: layout, scale: 2)
            LoRAHeadTests.randomFill(head.factors, std: 0.3, seed: 4)
            head.didMerge(rule: .resetless)
            LoRAHeadTests.randomFill(head.factors, std: 0.3, seed: 5)
            model.adapters = head
            lane.head = head
            head.markFolded()
            let acts = Activations(config: c, batch: 2, seqLen: 8, recomputesBlocks: recompute)
            head.prepare(rows: acts.rows)
            let (tokens, targets) = GradientCheckTests.batch(c, b: 2, t: 8, seed: 13)
            model.zeroGrad(); head.grads.zero()
            model.forward(acts, tokens: tokens, targets: targets)
            model.backward(acts)
            results.append((head.grads.array + model.grads.array).map(\.bitPattern))
        }
        XCTAssertEqual(results[0], results[1])
    }

    func testRecomputationHoldsOneBlockOfIntermediates() {
        let c = ModelConfig(vocabSize: 64, dim: 64, layers: 6, heads: 4, ffnDim: 160, contextLength: 32)
        let all = Activations(config: c, batch: 2, seqLen: 32), one = Activations(config: c, batch: 2, seqLen: 32, recomputesBlocks: true)
        XCTAssertEqual(all.floatCount, Activations.floatCount(config: c, batch: 2, seqLen: 32))
        XCTAssertEqual(one.floatCount, Activations.floatCount(config: c, batch: 2, seqLen: 32, recomputesBlocks: true))
        XCTAssertLessThan(Double(one.floatCount), 0.45 * Double(all.floatCount))
    }
}
