import LTEData
import LTEModel
import LTENumerics
import XCTest
@testable import LTETraining

/// The identities of DESIGN.md §2 on real training runs of the in-process LTE trainer.
final class LTEIdentityTests: XCTestCase {
    static let model = ModelConfig(vocabSize: 17, dim: 16, layers: 2, heads: 2, ffnDim: 32, contextLength: 8)

    static func training(iterations: Int, lr: Float = 3e-3) -> TrainingConfig {
        var t = TrainingConfig()
        t.iterations = iterations; t.learningRate = lr; t.minLearningRate = lr; t.warmupIterations = 0
        t.gradClip = 0; t.epsilon = 1e-10; t.evalIterations = 1; t.batchSize = 2
        return t
    }

    static func lora(heads: Int, mergeEvery: Int, merge: LoRAConfig.MergeRule = .resetless) -> LoRAConfig {
        var l = LoRAConfig()
        l.heads = heads; l.rank = 2; l.alpha = 8; l.mergeEvery = mergeEvery; l.merge = merge; l.wrapLMHead = true
        return l
    }

    func makeTrainer(_ t: TrainingConfig, _ l: LoRAConfig, sameData: Bool = false) throws -> ReplicaTrainer<RandomBatches> {
        try ReplicaTrainer(mode: .lte, model: Self.model, config: t, lora: l,
                           makeSource: { i in RandomBatches(batchSize: 2, contextLength: 8, vocabSize: 17, seed: sameData ? 1 : UInt64(i + 1)) },
                           validation: { RandomBatches(batchSize: 2, contextLength: 8, vocabSize: 17, seed: 99) })
    }

    /// After any number of reset-less merges, W − W₀ = (s/N) Σᵢ BᵢAᵢ.
    func testMergedWeightsEqualSumOfHeadProducts() throws {
        let t = Self.training(iterations: 30), l = Self.lora(heads: 3, mergeEvery: 3)
        let run = try makeTrainer(t, l)
        let w0 = run.main.model.params.clone()
        for i in 0..<t.iterations { _ = run.trainStep(iteration: i) }
        XCTAssertEqual(run.merges, 10)
        let layout = run.replicas[0].head!.layout
        var diff2 = 0.0, ref2 = 0.0
        for s in layout.sites {
            let (m, n, r) = (s.outFeatures, s.inFeatures, layout.rank)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for rep in run.replicas {
                        let f = rep.head!.factors
                        for k in 0..<r { sum += Double(f[s.b + i * r + k]) * Double(f[s.a + k * n + j]) }
                    }
                    let expected = Double(l.scale) / 3 * sum
                    let actual = Double(run.main.model.params[s.weight + i * n + j]) - Double(w0[s.weight + i * n + j])
                    diff2 += (expected - actual) * (expected - actual); ref2 += expected * expected
                }
            }
        }
        XCTAssertGreaterThan(ref2, 1e-2, "the heads barely moved; the identity would be vacuous")
        XCTAssertLessThan((diff2 / ref2).squareRoot(), 1e-5)
    }

    /// Frozen W has no gradient buffer: a replica's grads hold only embeddings and norm gains.
    func testReplicasHaveNoWeightGradientBuffer() throws {
        let run = try makeTrainer(Self.training(iterations: 1), Self.lora(heads: 2, mergeEvery: 1))
        let c = Self.model
        let replicated = c.vocabSize * c.dim + (2 * c.layers + 1) * c.dim
        XCTAssertEqual(run.replicas[0].model.grads.count, replicated)
    }

    /// T = 1 is multi-head LoRA with 1/N scaling: one model W₀ + (s/N) Σᵢ BᵢAᵢ whose heads train jointly
    /// on the same batches. (Each LTE head's gradient is N times the joint one; Adam does not see the
    /// factor.) Checked: merged W, every head's factors, and the replicated tensors.
    func testMergeEveryStepEqualsMultiHeadLoRA() throws {
        let n = 3, steps = 8
        let t = Self.training(iterations: steps), l = Self.lora(heads: n, mergeEvery: 1)
        let lte = try makeTrainer(t, l, sameData: true)
        let w0 = lte.main.model.params.clone()
        for i in 0..<steps { _ = lte.trainStep(iteration: i) }

        let layout = lte.replicas[0].head!.layout
        let wrapped = layout.wrappedTensorNames
        let model = try Transformer(config: Self.model, trainable: { !wrapped.contains($0.name) })
        model.params.copy(from: w0)
        let heads = (0..<n).map { i -> LoRAHead in
            let h = LoRAHead(layout: layout, scale: l.scale / Float(n))
            h.initialize(seed: t.seed, head: i, aInit: l.aInit)
            h.prepare(rows: 16)
            return h
        }
        model.adapters = SummedAdapters(heads)
        var headConfig = t
        headConfig.weightDecay = l.weightDecay
        let headOptimizers = heads.map { _ in AdamW(spans: [.init(param: 0, grad: 0, count: layout.count, decay: true)], config: headConfig) }
        let optimizer = AdamW(model: model, config: t)
        let acts = Activations(config: Self.model, batch: 2, seqLen: 8)
        var src = RandomBatches(batchSize: 2, contextLength: 8, vocabSize: 17, seed: 1)
        var x = [Int32](repeating: 0, count: 16), y = [Int32](repeating: 0, count: 16)
        for _ in 0..<steps {
            src.next(inputs: &x, targets: &y)
            for h in heads { h.grads.zero() }
            model.zeroGrad()
            model.forward(acts, tokens: x, targets: y)
            model.backward(acts)
            optimizer.update(params: model.params.pointer, grads: model.grads.pointer, lr: t.learningRate)
            for (h, o) in zip(heads, headOptimizers) { o.update(params: h.factors.pointer, grads: h.grads.pointer, lr: t.learningRate) }
        }

        func relative(_ a: [Double], _ b: [Double]) -> Double {
            let num = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            return num / max(1e-30, b.map { $0 * $0 }.reduce(0, +).squareRoot())
        }
        for i in 0..<n {
            XCTAssertLessThan(relative(lte.replicas[i].head!.factors.array.map(Double.init), heads[i].factors.array.map(Double.init)), 1e-4, "head \(i) factors")
        }
        var actual = [Double](), expected = [Double]()
        for s in layout.sites {
            let (m, k, r) = (s.outFeatures, s.inFeatures, layout.rank)
            for i in 0..<m {
                for j in 0..<k {
                    var sum = 0.0
                    for h in heads { for q in 0..<r { sum += Double(h.factors[s.b + i * r + q]) * Double(h.factors[s.a + q * k + j]) } }
                    expected.append(Double(l.scale) / Double(n) * sum)
                    actual.append(Double(lte.main.model.params[s.weight + i * k + j]) - Double(w0[s.weight + i * k + j]))
                }
            }
        }
        XCTAssertGreaterThan(expected.map(abs).max()!, 1e-3, "the heads barely moved")
        XCTAssertLessThan(relative(actual, expected), 1e-4, "merged W vs W₀ + (s/N) Σ BᵢAᵢ")
        for tensor in model.layout.tensors where !wrapped.contains(tensor.name) {
            let a = (0..<tensor.count).map { Double(lte.main.model.params[tensor.offset + $0]) }
            let b = (0..<tensor.count).map { Double(model.params[tensor.offset + $0]) }
            XCTAssertLessThan(relative(a, b), 1e-5, tensor.name)
        }
    }
}

/// Several heads summed on the same layers: the multi-head LoRA reference for the T = 1 identity.
final class SummedAdapters: LinearAdapters {
    let heads: [LoRAHead]
    init(_ heads: [LoRAHead]) { self.heads = heads }
    func wraps(_ p: Projection) -> Bool { heads[0].wraps(p) }
    func forward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        for h in heads { h.forward(site, x: x, ldx: ldx, y: y, ldy: ldy, rows: rows) }
    }
    func backward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int,
                  dx: UnsafeMutablePointer<Float>, lddx: Int, rows: Int) {
        for h in heads { h.backward(site, x: x, ldx: ldx, dy: dy, lddy: lddy, dx: dx, lddx: lddx, rows: rows) }
    }
}
