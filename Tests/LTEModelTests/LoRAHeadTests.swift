import XCTest
@testable import LTEModel
import LTENumerics

/// The multi-head LoRA linear and the merge rules of DESIGN.md §2.
final class LoRAHeadTests: XCTestCase {
    static let config = ModelConfig(vocabSize: 11, dim: 16, layers: 2, heads: 4, kvHeads: 2, ffnDim: 24, contextLength: 8)

    static func randomFill(_ b: FloatBuffer, std: Float, seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        rng.fillNormal(b.pointer, count: b.count, std: std)
    }

    /// Every site's A and B gradients (`samples` random entries each) against central finite
    /// differences of the loss on one fixed batch: the check every head variant shares.
    static func assertFactorGradientsMatchFiniteDifferences(_ model: Transformer, _ head: LoRAHead, eps: Float, samples: Int, label: String,
                                                             file: StaticString = #filePath, line: UInt = #line) {
        let c = model.config, (b, t) = (2, 5)
        let acts = Activations(config: c, batch: b, seqLen: t)
        head.prepare(rows: b * t)
        let (tokens, targets) = GradientCheckTests.batch(c, b: b, t: t, seed: 4)
        head.grads.zero(); model.zeroGrad()
        model.forward(acts, tokens: tokens, targets: targets)
        model.backward(acts)
        let analytic = head.grads.array
        var rng = SeededGenerator(seed: 3)
        for s in head.layout.sites {
            for (name, base, count) in [("A", s.a, head.layout.rank * s.inFeatures), ("B", s.b, head.layout.rank * s.outFeatures)] {
                var num = [Double](), ana = [Double]()
                for _ in 0..<samples {
                    let idx = base + rng.nextInt(below: count)
                    let saved = head.factors[idx]
                    head.factors[idx] = saved + eps
                    let up = Double(model.forward(acts, tokens: tokens, targets: targets, forTraining: false))
                    head.factors[idx] = saved - eps
                    let down = Double(model.forward(acts, tokens: tokens, targets: targets, forTraining: false))
                    head.factors[idx] = saved
                    num.append((up - down) / Double(2 * eps)); ana.append(Double(analytic[idx]))
                }
                let diff = zip(num, ana).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                let norm = num.map { $0 * $0 }.reduce(0, +).squareRoot()
                XCTAssertGreaterThan(norm, 1e-5, "\(label) \(s.site) \(name): vanishing gradient", file: file, line: line)
                XCTAssertLessThan(diff / norm, 1e-2, "\(label) \(s.site) \(name): relative error \(diff / norm)", file: file, line: line)
            }
        }
    }

    /// A head with random A, B and a different random V = B⁰A⁰, so every term of
    /// y = Wx + s·BAx − s·B⁰A⁰x carries gradient. Rank 3 takes OpenBLAS for the factor products,
    /// ranks 8 and 16 ThinProducts' kernels (over 10 rows: a block of eight and a remainder), and
    /// rank 24, a multiple of 8 wider than they pay for, OpenBLAS again (`ThinProducts.pays`).
    func testHeadGradientsMatchFiniteDifferences() throws {
        for rank in [3, 8, 16, 24] { try checkHeadGradients(rank: rank) }
        XCTAssertTrue(ThinProducts.pays(width: 16))
        XCTAssertFalse(ThinProducts.pays(width: 24))
    }

    func checkHeadGradients(rank: Int) throws {
        let c = Self.config
        let model = try GradientCheckTests.makeModel(c)
        let layout = LoRALayout(model: c, layout: model.layout, rank: rank, wrapLMHead: true)
        let head = LoRAHead(layout: layout, scale: 0.7)
        Self.randomFill(head.factors, std: 0.4, seed: 1)
        let previous = FloatBuffer(count: layout.count)
        Self.randomFill(previous, std: 0.4, seed: 2)
        head.setMerged(from: previous.pointer)
        XCTAssertTrue(head.hasCorrection)
        model.adapters = head
        Self.assertFactorGradientsMatchFiniteDifferences(model, head, eps: 1e-2, samples: 8, label: "rank \(rank)")
        // W is frozen only if the model was built so; this one trains it, so its dW exists too.
        XCTAssertEqual(model.grads.count, model.layout.count)
    }

    /// Right after a reset-less merge (V = BA), the head's output is the merged W's output.
    func testCorrectionCancelsRightAfterMerge() throws {
        let c = Self.config
        let model = try GradientCheckTests.makeModel(c)
        let layout = LoRALayout(model: c, layout: model.layout, rank: 2, wrapLMHead: false)
        let head = LoRAHead(layout: layout, scale: 3)
        Self.randomFill(head.factors, std: 0.5, seed: 8)
        head.didMerge(rule: .resetless)
        let plain = try Transformer(config: c)
        plain.params.copy(from: model.params)
        model.adapters = head
        let acts = Activations(config: c, batch: 1, seqLen: 6), acts2 = Activations(config: c, batch: 1, seqLen: 6)
        head.prepare(rows: 6)
        let (tokens, targets) = GradientCheckTests.batch(c, b: 1, t: 6, seed: 2)
        let withHead = model.forward(acts, tokens: tokens, targets: targets, forTraining: false)
        let without = plain.forward(acts2, tokens: tokens, targets: targets, forTraining: false)
        XCTAssertEqual(withHead, without, accuracy: 1e-5)
    }

    /// Folding the head into a weight copy (W + s·BA − s·V) gives the loss, the factor gradients and
    /// the replicated tensors' gradients of computing its term and correction beside W.
    func testFoldedHeadEqualsComputedHead() throws {
        for rank in [2, 8] { for correction in [false, true] { try checkFold(rank: rank, correction: correction) } }
    }

    func checkFold(rank: Int, correction: Bool) throws {
        let c = Self.config
        func run(fold: Bool) throws -> (loss: Float, grads: [Float], dx: [Float]) {
            let frozen = try GradientCheckTests.makeModel(c)
            let layout = LoRALayout(model: c, layout: frozen.layout, rank: rank, wrapLMHead: false)
            let lane = LayerFold(store: frozen.params, model: c, layout: frozen.layout, frozen: layout.wrappedTensorNames, adapters: layout)
            let model = try Transformer(config: c, trainable: { !layout.wrappedTensorNames.contains($0.name) },
                                        frozenSource: fold ? lane : frozen.params)
            model.params.copy(from: frozen.params)
            let head = LoRAHead(layout: layout, scale: 3)
            Self.randomFill(head.factors, std: 0.5, seed: 8)
            if correction { head.didMerge(rule: .resetless) }  // V = the factors now
            Self.randomFill(head.factors, std: 0.5, seed: 9)   // the head moves on: BA ≠ V
            XCTAssertEqual(head.hasCorrection, correction)
            if fold { lane.head = head; head.markFolded() }
            XCTAssertEqual(head.isFolded, fold)
            return Self.lossAndGradients(model, head)
        }
        let computed = try run(fold: false), folded = try run(fold: true)
        XCTAssertEqual(computed.loss, folded.loss, accuracy: 1e-5)
        // Relative to the largest gradient: folded, W + s·BA − s·V rounds differently (here |s·BA| ≫ |W|).
        let worst = Self.relativeWorst
        XCTAssertLessThan(worst(computed.grads, folded.grads), 1e-4, "rank \(rank), correction \(correction): factor gradients")
        XCTAssertLessThan(worst(computed.dx, folded.dx), 1e-4, "rank \(rank), correction \(correction): replicated tensors' gradients")
        XCTAssertGreaterThan(computed.grads.map(abs).max()!, 1e-3)   // not trivially zero
    }

    /// One forward and backward pass of `model` with `head` on a fixed batch of 6 rows: the loss,
    /// the head's factor gradients and the model's (replicated tensors') gradients.
    static func lossAndGradients(_ model: Transformer, _ head: LoRAHead) -> (loss: Float, grads: [Float], dx: [Float]) {
        let c = model.config
        model.adapters = head
        head.prepare(rows: 6)
        let acts = Activations(config: c, batch: 1, seqLen: 6)
        let (tokens, targets) = GradientCheckTests.batch(c, b: 1, t: 6, seed: 2)
        let loss = model.forward(acts, tokens: tokens, targets: targets)
        model.zeroGrad(); head.grads.zero()
        model.backward(acts)
        return (loss, head.grads.array, model.grads.array)
    }

    /// The largest difference between `a` and `b`, relative to a's largest magnitude (at least 1).
    static func relativeWorst(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! / max(1, a.map(abs).max()!) }

    func makeHeads(_ n: Int, layout: LoRALayout, seed: UInt64) -> [LoRAHead] {
        (0..<n).map { i in
            let h = LoRAHead(layout: layout, scale: 2.5)
            h.initialize(seed: seed, head: i, aInit: .official)
            var rng = SeededGenerator(seed: seed &+ UInt64(i) &+ 100)
            for s in layout.sites { rng.fillNormal(h.factors.pointer + s.b, count: layout.rank * s.outFeatures, std: 0.1) }
            return h
        }
    }

    func testSubsetThenRestEqualsAllAtOnce() throws {
        let c = Self.config
        let base = try GradientCheckTests.makeModel(c)
        let layout = LoRALayout(model: c, layout: base.layout, rank: 4, wrapLMHead: true)
        let heads = makeHeads(3, layout: layout, seed: 5)
        let all = base.params.clone(), split = base.params.clone()
        let contributions = heads.map { LTEMerge.Contribution(factors: $0.factors, previous: nil) }
        LTEMerge.apply(to: all, layout: layout, heads: contributions, scale: 2.5, totalHeads: 3)
        LTEMerge.apply(to: split, layout: layout, heads: Array(contributions[0..<2]), scale: 2.5, totalHeads: 3)
        LTEMerge.apply(to: split, layout: layout, heads: [contributions[2]], scale: 2.5, totalHeads: 3)
        var worst: Float = 0
        for i in 0..<all.count { worst = max(worst, abs(all[i] - split[i])) }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertNotEqual(all.array, base.params.array, "the merge changed nothing")
    }

    func testMergeIsBitIdenticalAtOneAndTwoThreads() throws {
        let c = ModelConfig(vocabSize: 64, dim: 96, layers: 2, heads: 4, ffnDim: 160, contextLength: 8)
        let base = try Transformer(config: c)
        base.initialize(seed: 1)
        let layout = LoRALayout(model: c, layout: base.layout, rank: 8, wrapLMHead: true)
        let heads = makeHeads(4, layout: layout, seed: 9)
        let previous = makeHeads(4, layout: layout, seed: 19)
        let contributions = (0..<4).map { LTEMerge.Contribution(factors: heads[$0].factors, previous: previous[$0].factors) }
        var results: [[Float]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            let w = base.params.clone()
            LTEMerge.apply(to: w, layout: layout, heads: contributions, scale: 32, totalHeads: 4)
            results.append(w.array)
        }
        Parallel.threads = 1
        XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern))
    }

    func testResetBZeroesBAndKeepsA() throws {
        let c = Self.config
        let base = try Transformer(config: c)
        let layout = LoRALayout(model: c, layout: base.layout, rank: 2, wrapLMHead: false)
        let head = makeHeads(1, layout: layout, seed: 3)[0]
        let before = head.factors.array
        head.didMerge(rule: .resetB)
        XCTAssertFalse(head.hasCorrection)
        for s in layout.sites {
            for i in 0..<(layout.rank * s.outFeatures) { XCTAssertEqual(head.factors[s.b + i], 0) }
            for i in 0..<(layout.rank * s.inFeatures) { XCTAssertEqual(head.factors[s.a + i], before[s.a + i]) }
        }
    }

    func testAInitIsSemiOrthogonalAndScaled() throws {
        let c = Self.config
        let base = try Transformer(config: c)
        let layout = LoRALayout(model: c, layout: base.layout, rank: 4, wrapLMHead: false)
        let h0 = LoRAHead(layout: layout, scale: 1), h1 = LoRAHead(layout: layout, scale: 1)
        h0.initialize(seed: 1, head: 0, aInit: .official)
        h1.initialize(seed: 1, head: 1, aInit: .official)
        for s in layout.sites {
            let n = s.inFeatures, gain2 = Float(n) / 4
            for i in 0..<4 {
                for j in 0..<4 {
                    let dot = Vec.dot(h0.factors.pointer + s.a + i * n, h0.factors.pointer + s.a + j * n, count: n)
                    XCTAssertEqual(dot, i == j ? gain2 : 0, accuracy: 1e-4 * gain2)
                }
            }
            XCTAssertTrue(Vec.allZero(h0.factors.pointer + s.b, count: 4 * s.outFeatures), "B starts at zero")
        }
        XCTAssertNotEqual(h0.factors.array, h1.factors.array, "each head draws its own A")
    }
}
