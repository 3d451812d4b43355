import XCTest
@testable import LTEModel
import LTENumerics

/// Frozen weights read a layer at a time (LayerFold) and held quantized (QuantizedWeights).
final class FrozenWeightsTests: XCTestCase {
    static let config = ModelConfig(vocabSize: 11, dim: 16, layers: 2, heads: 4, kvHeads: 2, ffnDim: 24, contextLength: 8)

    /// A head with random A, B and V on the model's frozen weights, read through `source`.
    func makeHeadModel(rank: Int, source: (Transformer, LoRALayout) -> any FrozenWeights) throws -> (Transformer, LoRAHead, Any) {
        let c = Self.config
        let base = try GradientCheckTests.makeModel(c)
        let layout = LoRALayout(model: c, layout: base.layout, rank: rank, wrapLMHead: true)
        let frozen = source(base, layout)
        let model = try Transformer(config: c, trainable: { !layout.wrappedTensorNames.contains($0.name) }, frozenSource: frozen)
        model.params.copy(from: base.params)
        let head = LoRAHead(layout: layout, scale: 0.7)
        LoRAHeadTests.randomFill(head.factors, std: 0.4, seed: 1)
        let previous = FloatBuffer(count: layout.count)
        LoRAHeadTests.randomFill(previous, std: 0.4, seed: 2)
        head.setMerged(from: previous.pointer)
        model.adapters = head
        return (model, head, (base, frozen))
    }

    /// The head's factor gradients against central finite differences when W is held in nf4 and
    /// int8 and the head is folded into each layer's scratch (dequantize, then W + s·BA − s·V).
    func testHeadGradientsOverQuantizedFoldedWeights() throws {
        for format in [QuantizedFormat.nf4, .int8] {
            for rank in [3, 8] {
                var lane: LayerFold!
                let (model, head, keep) = try makeHeadModel(rank: rank) { base, layout in
                    let q = QuantizedWeights(params: base.params, layout: base.layout, names: layout.wrappedTensorNames, format: format)
                    lane = LayerFold(store: q, model: Self.config, layout: base.layout, frozen: layout.wrappedTensorNames, adapters: layout)
                    return lane
                }
                lane.head = head
                head.markFolded()
                // Smaller steps than the f32 check: nf4's coarse W makes some units' losses more curved.
                LoRAHeadTests.assertFactorGradientsMatchFiniteDifferences(model, head, eps: 4e-3, samples: 6, label: "\(format) rank \(rank)")
                withExtendedLifetime(keep) {}
            }
        }
    }

    /// The model computes against the dequantized W: the loss through a quantized store equals the
    /// loss of a dense model whose W was replaced by its dequantized values, bit for bit.
    func testQuantizedStoreIsItsDequantizedWeights() throws {
        let c = Self.config
        let base = try GradientCheckTests.makeModel(c)
        let layout = LoRALayout(model: c, layout: base.layout, rank: 4, wrapLMHead: false)
        let names = layout.wrappedTensorNames
        let q = QuantizedWeights(params: base.params, layout: base.layout, names: names, format: .nf4)
        let lane = LayerFold(store: q, model: c, layout: base.layout, frozen: names, adapters: nil)
        let viaLane = try Transformer(config: c, trainable: { !names.contains($0.name) }, frozenSource: lane)
        viaLane.params.copy(from: base.params)
        let dense = try Transformer(config: c)
        dense.params.copy(from: base.params)
        var changed = 0
        for t in base.layout.tensors where names.contains(t.name) {
            let e = q.entries.first { $0.name == t.name }!
            e.tensor.dequantize(into: dense.params.pointer + t.offset)
            for i in 0..<t.count where dense.params[t.offset + i] != base.params[t.offset + i] { changed += 1 }
        }
        XCTAssertGreaterThan(changed, 100, "nf4 changed the weights")
        let acts = Activations(config: c, batch: 1, seqLen: 8), acts2 = Activations(config: c, batch: 1, seqLen: 8)
        let (tokens, targets) = GradientCheckTests.batch(c, b: 1, t: 8, seed: 6)
        let a = viaLane.forward(acts, tokens: tokens, targets: targets, forTraining: false)
        let b = dense.forward(acts2, tokens: tokens, targets: targets, forTraining: false)
        XCTAssertEqual(a.bitPattern, b.bitPattern)
        XCTAssertLessThan(Double(q.byteCount), 0.2 * Double(4 * names.reduce(0) { $0 + base.layout.tensor(named: $1)!.count }))
    }

    /// A lane holds one group of scratch, not a copy of the model.
    func testLaneScratchIsTheLargestGroup() throws {
        let c = Self.config
        let base = try GradientCheckTests.makeModel(c)
        let layout = LoRALayout(model: c, layout: base.layout, rank: 4, wrapLMHead: true)
        let lane = LayerFold(store: base.params, model: c, layout: base.layout, frozen: layout.wrappedTensorNames, adapters: layout)
        XCTAssertEqual(lane.scratchCount, max(c.qkvDim * c.dim, 2 * c.ffnDim * c.dim, c.vocabSize * c.dim))
        XCTAssertLessThan(lane.scratchCount, base.layout.count / 4)
    }
}
