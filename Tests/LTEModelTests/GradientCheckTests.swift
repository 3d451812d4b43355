import XCTest
@testable import LTEModel
import LTENumerics

/// Every parameter tensor's analytic gradient against central finite differences.
final class GradientCheckTests: XCTestCase {
    /// GQA (4 query heads over 2 kv heads), two blocks, a sequence shorter than the context.
    static let tiny = ModelConfig(vocabSize: 13, dim: 16, layers: 2, heads: 4, kvHeads: 2, ffnDim: 24, contextLength: 8)

    /// A model with weights large enough that every nonlinearity is exercised (not the 0.02 init).
    static func makeModel(_ c: ModelConfig = tiny, seed: UInt64 = 7) throws -> Transformer {
        let m = try Transformer(config: c)
        var rng = SeededGenerator(seed: seed)
        for t in m.layout.tensors {
            let p = m.params.pointer + t.offset
            for i in 0..<t.count { p[i] = t.shape.count == 1 ? 1 + 0.3 * rng.nextNormal() : 0.4 * rng.nextNormal() }
        }
        return m
    }

    static func batch(_ c: ModelConfig, b: Int, t: Int, seed: UInt64) -> (tokens: [Int32], targets: [Int32]) {
        var rng = SeededGenerator(seed: seed)
        let tokens = (0..<(b * t)).map { _ in Int32(rng.nextInt(below: c.vocabSize)) }
        let targets = (0..<(b * t)).map { _ in Int32(rng.nextInt(below: c.vocabSize)) }
        return (tokens, targets)
    }

    func testEveryTensorMatchesFiniteDifferences() throws {
        let c = Self.tiny
        let model = try Self.makeModel()
        let (b, t) = (2, 6)
        let acts = Activations(config: c, batch: b, seqLen: t)
        let (tokens, targets) = Self.batch(c, b: b, t: t, seed: 3)
        func loss() -> Double {
            Double(model.forward(acts, tokens: tokens, targets: targets, forTraining: false))
        }
        model.zeroGrad()
        model.forward(acts, tokens: tokens, targets: targets)
        model.backward(acts)
        let analytic = model.grads.array

        var rng = SeededGenerator(seed: 11)
        let eps: Float = 1e-2
        for tensor in model.layout.tensors {
            // Up to 24 entries per tensor; the embedding rows of tokens that occur get most of them.
            let picks = tensor.count <= 24 ? Array(0..<tensor.count) : (0..<24).map { _ in rng.nextInt(below: tensor.count) }
            var num = [Double](), ana = [Double]()
            for i in picks {
                let idx = tensor.offset + i
                let saved = model.params[idx]
                model.params[idx] = saved + eps
                let up = loss()
                model.params[idx] = saved - eps
                let down = loss()
                model.params[idx] = saved
                num.append((up - down) / Double(2 * eps))
                ana.append(Double(analytic[idx]))
            }
            let diff = zip(num, ana).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            let norm = max(num.map { $0 * $0 }.reduce(0, +).squareRoot(), ana.map { $0 * $0 }.reduce(0, +).squareRoot())
            XCTAssertGreaterThan(norm, 1e-4, "\(tensor.name): gradient vanished, the check would be vacuous")
            XCTAssertLessThan(diff / norm, 1e-2, "\(tensor.name): analytic vs finite-difference relative error \(diff / norm)")
        }
    }

    /// Gradients accumulate across backward calls (gradient accumulation relies on it).
    func testBackwardAccumulates() throws {
        let c = Self.tiny
        let model = try Self.makeModel()
        let acts = Activations(config: c, batch: 1, seqLen: 8)
        let (tokens, targets) = Self.batch(c, b: 1, t: 8, seed: 5)
        model.zeroGrad()
        model.forward(acts, tokens: tokens, targets: targets); model.backward(acts)
        let once = model.grads.array
        model.forward(acts, tokens: tokens, targets: targets); model.backward(acts)
        let twice = model.grads.array
        for i in stride(from: 0, to: once.count, by: 97) {
            XCTAssertEqual(twice[i], 2 * once[i], accuracy: 1e-5 + 1e-4 * abs(once[i]))
        }
    }
}

/// The model's own parallel loops (attention heads across threads) change no result.
final class ThreadCountTests: XCTestCase {
    func testTwoThreadsGiveTheSameLossAndGradients() throws {
        let c = GradientCheckTests.tiny
        let model = try GradientCheckTests.makeModel(c)
        let acts = Activations(config: c, batch: 3, seqLen: 8)
        let (tokens, targets) = GradientCheckTests.batch(c, b: 3, t: 8, seed: 21)
        var results: [(Float, [Float])] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            BLASThreads.set(threads)
            model.zeroGrad()
            let loss = model.forward(acts, tokens: tokens, targets: targets)
            model.backward(acts)
            results.append((loss, model.grads.array))
        }
        Parallel.threads = 1
        BLASThreads.set(1)
        XCTAssertEqual(results[0].0, results[1].0, accuracy: 1e-6)
        let worst = zip(results[0].1, results[1].1).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-6)
    }
}
