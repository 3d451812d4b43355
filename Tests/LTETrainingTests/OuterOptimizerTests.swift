import Foundation
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTETraining

/// `lte.outer nesterov` (issue 17, item 4): the merge a node runs against a naive reference, and
/// the config values it refuses.
final class OuterOptimizerTests: XCTestCase {
    static let model = ModelConfig(vocabSize: 17, dim: 16, layers: 2, heads: 2, ffnDim: 32, contextLength: 8)

    static func lora(outer: LoRAConfig.OuterRule, eta: Float = 0.7, mu: Float = 0.9) -> LoRAConfig {
        var l = LoRAConfig()
        l.heads = 3; l.rank = 2; l.alpha = 7; l.wrapLMHead = true
        l.outer = outer; l.outerLearningRate = eta; l.outerMomentum = mu
        return l
    }

    /// Five rounds of random factors through `MainWeights.merge`, some heads missing some rounds,
    /// against the formula in float64: Δ = (s/N) Σᵢ (BᵢAᵢ − Vᵢ), m ← μm + Δ, W ← W + η(Δ + μm),
    /// Vᵢ ← BᵢAᵢ; replicated tensors ← the mean of the pushes.
    func testMergeMatchesNaiveNesterovReference() throws {
        let (eta, mu): (Double, Double) = (0.7, 0.9)
        let l = Self.lora(outer: .nesterov, eta: Float(eta), mu: Float(mu))
        let main = try MainWeights(model: Self.model, lora: l, totalHeads: 3, seed: 5)
        let layout = try XCTUnwrap(main.layout)
        XCTAssertNotNil(main.outer)
        var w = main.model.params.array.map(Double.init)
        var m = [Double](repeating: 0, count: w.count)
        var previous: [[Float]?] = [nil, nil, nil]
        var rng = SeededGenerator(seed: 11)
        let factors = (0..<3).map { _ in FloatBuffer(count: layout.count) }
        for f in factors { rng.fillNormal(f.pointer, count: f.count, std: 0.3) }
        let present: [[Int]] = [[0, 1, 2], [2, 0], [1], [0, 1, 2], [0, 2]]
        for heads in present {
            var pushes: [MainWeights.Push] = []
            for h in heads {
                for i in 0..<factors[h].count { factors[h][i] += 0.05 * rng.nextNormal() }
                let replicated = main.packReplicated(main.model.params.pointer)
                for i in 0..<replicated.count { replicated[i] += 0.01 * rng.nextNormal() }
                pushes.append(.init(head: h, factors: factors[h].clone(), replicated: replicated))
            }
            let expectedMean = (0..<main.replicatedCount).map { i in pushes.reduce(0.0) { $0 + Double($1.replicated[i]) } / Double(pushes.count) }
            main.merge(pushes)
            // The reference, in float64 from the same factors.
            var delta = [Double](repeating: 0, count: w.count)
            let factor = Double(l.scale) / 3
            for h in heads {
                let f = factors[h].array, p = previous[h]
                for s in layout.sites {
                    let (rows, cols, r) = (s.outFeatures, s.inFeatures, layout.rank)
                    for i in 0..<rows {
                        for j in 0..<cols {
                            var sum = 0.0
                            for k in 0..<r {
                                sum += Double(f[s.b + i * r + k]) * Double(f[s.a + k * cols + j])
                                if let p { sum -= Double(p[s.b + i * r + k]) * Double(p[s.a + k * cols + j]) }
                            }
                            delta[s.weight + i * cols + j] += factor * sum
                        }
                    }
                }
                previous[h] = f
            }
            var wrapped = Set<Int>()
            for s in layout.sites { for i in s.weight..<(s.weight + s.outFeatures * s.inFeatures) { wrapped.insert(i) } }
            for i in wrapped {
                m[i] = mu * m[i] + delta[i]
                w[i] += eta * (delta[i] + mu * m[i])
            }
            var k = 0
            for (o, n) in main.replicatedSpans { for i in o..<(o + n) { w[i] = expectedMean[k]; k += 1 } }
            var err2 = 0.0, ref2 = 0.0, step2 = 0.0
            for i in 0..<w.count {
                let d = Double(main.model.params[i]) - w[i]
                err2 += d * d; ref2 += w[i] * w[i]
                if wrapped.contains(i) { step2 += m[i] * m[i] }
            }
            XCTAssertGreaterThan(step2, 1e-4, "the velocity barely moved; the comparison would be vacuous")
            XCTAssertLessThan((err2 / ref2).squareRoot(), 2e-6, "round \(main.round)")
            let v = try XCTUnwrap(main.outer?.velocity)
            let verr = wrapped.map { Double(v[$0]) - m[$0] }.reduce(0) { $0 + $1 * $1 }
            XCTAssertLessThan((verr / step2).squareRoot(), 1e-5, "velocity, round \(main.round)")
        }
    }

    /// Two nodes fed the same pushes hold the same bits of W and m (the server and a worker), and
    /// a worker applying the server's mean ends where the server's merge did.
    func testServerAndWorkerSideMergeToTheSameBits() throws {
        let l = Self.lora(outer: .nesterov)
        let server = try MainWeights(model: Self.model, lora: l, totalHeads: 3, seed: 5)
        let worker = try MainWeights(model: Self.model, lora: l, totalHeads: 3, seed: 5)
        var rng = SeededGenerator(seed: 3)
        let factors = (0..<3).map { _ in FloatBuffer(count: server.layout!.count) }
        for _ in 0..<4 {
            var pushes: [MainWeights.Push] = []
            for (h, f) in factors.enumerated() {
                rng.fillNormal(f.pointer, count: f.count, std: 0.2)
                pushes.append(.init(head: h, factors: f.clone(), replicated: server.packReplicated(server.model.params.pointer)))
            }
            let mean = server.merge(pushes.reversed())
            worker.apply(factors: pushes.map { ($0.head, $0.factors) }, replicatedMean: mean)
        }
        XCTAssertEqual(server.model.params.array.map(\.bitPattern), worker.model.params.array.map(\.bitPattern))
        XCTAssertEqual(server.outer!.velocity.array.map(\.bitPattern), worker.outer!.velocity.array.map(\.bitPattern))
        let plain = try MainWeights(model: Self.model, lora: Self.lora(outer: .none), totalHeads: 3, seed: 5)
        XCTAssertNil(plain.outer)
    }

    func testBadOuterSettingsAreRefusedWithTheChoices() throws {
        func decode(_ lte: String) throws -> RunConfig {
            try RunConfig.decode(Data(#"""
                {"model": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                           "max_position_embeddings": 8, "vocab_size": 17}, "lte": {\#(lte)}}
                """#.utf8), source: "config file x.json")
        }
        XCTAssertEqual(try decode(#""outer": "nesterov""#).lte.outer, .nesterov)
        XCTAssertEqual(try decode("").lte.outer, LoRAConfig.OuterRule.none)
        assertLTEError(try decode(#""outer": "adam""#), contains: "config file x.json: lte.outer must be one of none, nesterov (got \"adam\")")
        assertLTEError(try decode(#""outer": 1"#), contains: "lte.outer must be one of none, nesterov")
        assertLTEError(try decode(#""outer_learning_rate": 0"#), contains: "lte.outer_learning_rate must be in (0, 10]")
        assertLTEError(try decode(#""outer_momentum": 1"#), contains: "lte.outer_momentum must be in [0, 1)")
        assertLTEError(try decode(#""outer_momentum": -0.1"#), contains: "lte.outer_momentum must be in [0, 1)")
    }
}
