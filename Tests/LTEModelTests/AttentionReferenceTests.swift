import Foundation
import XCTest
@testable import LTEModel
import LTENumerics

/// The attention core against a per-query loop straight from softmax(q·k/√d)·v, with GQA.
final class AttentionReferenceTests: XCTestCase {
    static let gqa = ModelConfig(vocabSize: 5, dim: 24, layers: 1, heads: 6, kvHeads: 2, ffnDim: 8, contextLength: 7)

    /// One causal block (7 ≥ T), and blocks of 3 and 2 rows (the upper triangle skipped).
    func testForwardMatchesNaiveCausalGQA() {
        for block in [7, 3, 2] { forwardMatchesNaive(block: block) }
    }

    func forwardMatchesNaive(block: Int) {
        let c = Self.gqa
        let (b, t, ld, hd) = (2, 7, c.qkvDim, c.headDim)
        var rng = SeededGenerator(seed: 9)
        var qkv = (0..<(b * t * ld)).map { _ in rng.nextNormal() }
        var probs = [Float](repeating: 0, count: b * c.heads * t * t)
        var out = [Float](repeating: 0, count: b * t * c.dim)
        var attention = Attention(c)
        attention.block = block
        attention.forward(qkv: &qkv, probs: &probs, out: &out, batch: b, seqLen: t)
        var worst = 0.0
        for s in 0..<b {
            for h in 0..<c.heads {
                let g = h / (c.heads / c.kvHeads)
                for i in 0..<t {
                    let q = (0..<hd).map { Double(qkv[(s * t + i) * ld + h * hd + $0]) }
                    var w = (0...i).map { j -> Double in
                        let k = (0..<hd).map { Double(qkv[(s * t + j) * ld + c.dim + g * hd + $0]) }
                        return zip(q, k).map(*).reduce(0, +) / Double(hd).squareRoot()
                    }
                    let m = w.max()!
                    w = w.map { Foundation.exp($0 - m) }
                    let z = w.reduce(0, +)
                    for e in 0..<hd {
                        let ref = (0...i).reduce(0.0) { $0 + w[$1] / z * Double(qkv[(s * t + $1) * ld + c.dim + c.kvDim + g * hd + e]) }
                        worst = max(worst, abs(ref - Double(out[(s * t + i) * c.dim + h * hd + e])))
                    }
                }
            }
        }
        XCTAssertLessThan(worst, 1e-5)
    }

    /// The blocked backward equals the one-block backward (which the model's gradient check covers).
    func testBlockedBackwardEqualsOneBlock() {
        let c = Self.gqa
        let (b, t) = (2, 7)
        var rng = SeededGenerator(seed: 4)
        let qkv = (0..<(b * t * c.qkvDim)).map { _ in rng.nextNormal() }
        let dOut = (0..<(b * t * c.dim)).map { _ in rng.nextNormal() }
        func gradients(block: Int) -> [Float] {
            var attention = Attention(c)
            attention.block = block
            var qkv = qkv, dOut = dOut
            var probs = [Float](repeating: 0, count: b * c.heads * t * t), dProbs = probs
            var out = [Float](repeating: 0, count: b * t * c.dim)
            var dQKV = [Float](repeating: .nan, count: qkv.count)   // every entry must be written
            attention.forward(qkv: &qkv, probs: &probs, out: &out, batch: b, seqLen: t)
            attention.backward(dOut: &dOut, qkv: &qkv, probs: &probs, dProbs: &dProbs, dQKV: &dQKV, batch: b, seqLen: t)
            return dQKV
        }
        let whole = gradients(block: t)
        for block in [3, 2, 1] {
            let blocked = gradients(block: block)
            XCTAssertFalse(blocked.contains { !$0.isFinite })
            XCTAssertLessThan(zip(whole, blocked).map { abs($0 - $1) }.max()!, 1e-5, "block \(block)")
        }
    }
}
