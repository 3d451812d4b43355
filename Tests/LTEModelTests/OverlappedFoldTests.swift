import XCTest
@testable import LTEModel
import LTENumerics

/// A head with a push in flight (`lte.overlap`, LoRAHead.awaitMerge): its effective weight counts its
/// pushed progress P − V (P = BᵢᵏAᵢᵏ) at ω·s, ω = 1/N + c(1 − 1/N) (c = 0: the merge's own weight s/N),
///   Wᵢ = W + ω·s(P − V) + s(BA − P) = W + s·BA − (1 − ω)s·P − ω·s·V,
/// and once the merge is applied it is back to W + s(BA − V) with V = P (merged) or V as it was (not).
final class OverlappedFoldTests: XCTestCase {
    static let config = LoRAHeadTests.config
    static let heads = 4

    /// One wrapped layer's effective weight, in float64 with plain loops: W + Σₜ cₜ·Bₜ Aₜ.
    static func dense(_ w: UnsafePointer<Float>, _ site: LoRALayout.Site, rank r: Int,
                      _ terms: [(coefficient: Double, factors: FloatBuffer)]) -> [Double] {
        let m = site.outFeatures, n = site.inFeatures
        var out = (0..<(m * n)).map { Double(w[$0]) }
        for (c, f) in terms {
            for o in 0..<m { for i in 0..<n {
                var dot = 0.0
                for j in 0..<r { dot += Double(f[site.b + o * r + j]) * Double(f[site.a + j * n + i]) }
                out[o * n + i] += c * dot
            } }
        }
        return out
    }

    /// Frozen weights, a lane folding `head` in, and every wrapped layer as the lane serves it.
    struct Lane {
        let frozen: Transformer, layout: LoRALayout, fold: LayerFold
        init(rank: Int, seed: UInt64) throws {
            frozen = try GradientCheckTests.makeModel(OverlappedFoldTests.config)
            LoRAHeadTests.randomFill(frozen.params, std: 0.3, seed: seed)
            layout = LoRALayout(model: OverlappedFoldTests.config, layout: frozen.layout, rank: rank, wrapLMHead: true)
            fold = LayerFold(store: frozen.params, model: OverlappedFoldTests.config, layout: frozen.layout,
                             frozen: layout.wrappedTensorNames, adapters: layout)
        }
        /// Each site's folded weight, copied out of the lane's scratch.
        func folded(_ head: LoRAHead) -> [[Float]] {
            fold.head = head
            defer { fold.head = nil }
            let l = frozen.layout
            let groups = l.blocks.flatMap { [$0.wqkv, $0.wo, $0.wGateUp, $0.wDown] } + [l.lmHead]
            return layout.sites.map { s in
                let g = groups.filter { $0 <= s.weight }.max()!
                let p = fold.weights(at: g) + (s.weight - g)
                return Array(UnsafeBufferPointer(start: p, count: s.outFeatures * s.inFeatures))
            }
        }
        func assertFolded(_ head: LoRAHead, equals terms: [(coefficient: Double, factors: FloatBuffer)], weights: FloatBuffer? = nil,
                          _ label: String, file: StaticString = #filePath, line: UInt = #line) {
            let w = weights ?? frozen.params
            for (s, got) in zip(layout.sites, folded(head)) {
                let want = OverlappedFoldTests.dense(w.pointer + s.weight, s, rank: layout.rank, terms)
                let size = want.map(abs).max()!
                let worst = zip(got, want).map { abs(Double($0) - $1) }.max()!
                XCTAssertLessThan(worst, 1e-5 * max(1, size), "\(label): \(s.site) off by \(worst)", file: file, line: line)
            }
        }
    }

    static func randomFactors(_ layout: LoRALayout, seed: UInt64) -> FloatBuffer {
        let b = FloatBuffer(count: layout.count)
        LoRAHeadTests.randomFill(b, std: 0.5, seed: seed)
        return b
    }

    /// The rank-3r fold (and its rank-2r form before the head's first merge) against the dense sum,
    /// at a rank OpenBLAS takes and one ThinProducts takes, for c = 0 (ω = 1/N) and the default c.
    func testFoldWithAPushInFlightMatchesTheDenseReference() throws {
        for rank in [3, 8] { for hasCorrection in [false, true] { for c in [Float(0), LoRAConfig().overlapExtrapolation] {
                let lane = try Lane(rank: rank, seed: 1)
                let s: Float = 2.5, n = Double(Self.heads)
                let head = LoRAHead(layout: lane.layout, scale: s)
                let v = Self.randomFactors(lane.layout, seed: 2), p = Self.randomFactors(lane.layout, seed: 3)
                if hasCorrection { head.setMerged(from: v.pointer) }
                head.factors.copy(from: Self.randomFactors(lane.layout, seed: 4))
                let label = "rank \(rank), correction \(hasCorrection), c \(c)"
                // Before the push: W + s(BA − V).
                lane.assertFolded(head, equals: [(Double(s), head.factors)] + (hasCorrection ? [(-Double(s), v)] : []), label + ", no push")
                head.awaitMerge(of: p, totalHeads: Self.heads, extrapolation: c)
                let omega = 1 / n + Double(c) * (1 - 1 / n)
                var terms: [(coefficient: Double, factors: FloatBuffer)] = [(Double(s), head.factors), (-(1 - omega) * Double(s), p)]
                if hasCorrection { terms.append((-omega * Double(s), v)) }
                lane.assertFolded(head, equals: terms, label + ", push in flight")
                // Not the plain fold: that one is W + s(BA − V), (s − s/N)(P − V) away.
                let plain = LoRAHead(layout: lane.layout, scale: s)
                if hasCorrection { plain.setMerged(from: v.pointer) }
                plain.factors.copy(from: head.factors)
                XCTAssertNotEqual(lane.folded(plain), lane.folded(head), label)
        } } }
    }

    /// With c = 0, merge k applied with this head: W_k = W_{k−1} + (s/N)(P − V) + (the others'
    /// shares), and the head's weight after `setMerged(P)` is its weight before plus the others'
    /// shares only: its own share is neither lost nor counted twice. A round that did not merge it (`pushWasNotMerged`)
    /// leaves W without it, and the head back on W + s(BA − V).
    func testAMergeHandsTheOwnShareOverToW() throws {
        let lane = try Lane(rank: 8, seed: 5)
        let s: Float = 2.5
        let head = LoRAHead(layout: lane.layout, scale: s)
        let v = Self.randomFactors(lane.layout, seed: 6), p = Self.randomFactors(lane.layout, seed: 7)
        head.setMerged(from: v.pointer)
        head.factors.copy(from: Self.randomFactors(lane.layout, seed: 8))
        head.awaitMerge(of: p, totalHeads: Self.heads, extrapolation: 0)
        let before = lane.folded(head)

        // Merge k of this head alone (the others missed it): W moves by exactly this head's share.
        let weights = FloatBuffer(count: lane.frozen.params.count)
        weights.copy(from: lane.frozen.params)
        LTEMerge.apply(to: weights, layout: lane.layout, heads: [.init(factors: p, previous: v)], scale: s, totalHeads: Self.heads)
        lane.frozen.params.copy(from: weights)
        head.setMerged(from: p.pointer)
        XCTAssertNil(head.pushed)
        let after = lane.folded(head)
        lane.assertFolded(head, equals: [(Double(s), head.factors), (-Double(s), p)], "after merge")
        for (a, b) in zip(before, after) {
            let size = a.map(abs).max()!
            XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-5 * max(1, size), "the head's weight jumped at its own merge")
        }

        // A round without this head: W unchanged, and the whole progress since V is the head's again.
        let missed = try Lane(rank: 8, seed: 5)
        head.setMerged(from: v.pointer)
        head.awaitMerge(of: p, totalHeads: Self.heads, extrapolation: LoRAConfig().overlapExtrapolation)
        head.pushWasNotMerged()
        XCTAssertNil(head.pushed)
        missed.assertFolded(head, equals: [(Double(s), head.factors), (-Double(s), v)], "merge without the head")
    }

    /// Computing the corrections beside W (unfolded) gives the loss and gradients of the fold, and
    /// the factor gradients match finite differences, with a push in flight.
    func testComputedCorrectionsWithAPushInFlightMatchTheFoldAndFiniteDifferences() throws {
        let c = Self.config
        func run(fold: Bool) throws -> (loss: Float, grads: [Float], dx: [Float]) {
            let lane = try Lane(rank: 8, seed: 11)
            let model = try Transformer(config: c, trainable: { !lane.layout.wrappedTensorNames.contains($0.name) },
                                        frozenSource: fold ? lane.fold : lane.frozen.params)
            model.params.copy(from: lane.frozen.params)
            let head = LoRAHead(layout: lane.layout, scale: 0.7)
            let v = Self.randomFactors(lane.layout, seed: 12)
            head.setMerged(from: v.pointer)
            head.factors.copy(from: Self.randomFactors(lane.layout, seed: 13))
            head.awaitMerge(of: Self.randomFactors(lane.layout, seed: 14), totalHeads: Self.heads, extrapolation: 0.5)
            if fold { lane.fold.head = head; head.markFolded() }
            let out = LoRAHeadTests.lossAndGradients(model, head)
            // (On a batch of its own: after the values above are taken.)
            if !fold { LoRAHeadTests.assertFactorGradientsMatchFiniteDifferences(model, head, eps: 1e-2, samples: 6, label: "push in flight") }
            return out
        }
        let computed = try run(fold: false), folded = try run(fold: true)
        XCTAssertEqual(computed.loss, folded.loss, accuracy: 1e-4)
        let worst = LoRAHeadTests.relativeWorst
        XCTAssertLessThan(worst(computed.grads, folded.grads), 1e-4)
        XCTAssertLessThan(worst(computed.dx, folded.dx), 1e-4)
        XCTAssertGreaterThan(computed.grads.map(abs).max()!, 1e-3)
    }
}
