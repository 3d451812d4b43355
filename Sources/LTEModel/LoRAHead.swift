import Foundation
import LTENumerics

/// One LTE head: low-rank factors (Aᵢ, Bᵢ) on every wrapped linear layer, and the copy of them taken
/// at the head's last merge (Aᵢ⁰, Bᵢ⁰), whose product is the correction Vᵢ.
///
/// Wrapped layer, for this head on its own data (DESIGN.md §2):
///   y = W x + s·Bᵢ Aᵢ x − s·Vᵢ x,   Vᵢ = Bᵢ⁰ Aᵢ⁰ (kept as two factors, never as a dense matrix)
/// so right after a reset-less merge the head sees exactly the merged W.
///
/// Computed as written, the term and the correction cost eight rank-r products per layer and step
/// beside W's own. A head that trains on a weight copy it may write folds both in before each step
/// instead (`fold`, see HeadLanes): the copy then holds the head's effective weight
///   Wᵢ = W + s·BᵢAᵢ − s·Vᵢ
/// so W's products give y and dx whole, and the head computes only what its gradients need:
/// u = x Aᵢᵀ for dBᵢ and g = dy Bᵢ for dAᵢ. The fold is one rank-2r product per layer and step (a pass
/// over W), against two rank-r products over the batch. Vᵢ stays kept as its two factors
/// (`merged`) for the merge, the wire and the history.
///
/// With `lte.overlap` a head trains round k + 1 on W_{k−1}, before merge k is applied. From its push
/// for round k until then it also holds the factors it pushed, Bᵢᵏ, Aᵢᵏ (`pushed`: the values the
/// merge will use), and its effective weight counts its own round-k progress at a weight ω·s and
/// only its progress since the push at s:
///   Wᵢ = W + ω·s·(BᵢᵏAᵢᵏ − Vᵢ) + s·(BᵢAᵢ − BᵢᵏAᵢᵏ),   ω = 1/N + c·(1 − 1/N)
/// ω = 1/N (c = 0) is the share merge k will give it; the others' round-k progress is not known
/// until then, and c > 0 stands in for it with the head's own (`lte.overlap_extrapolation`; c = 1,
/// ω = 1, is W + s·BᵢAᵢ − s·Vᵢ as if no push were in flight). Once merge k is applied the head is
/// back to W + s·BᵢAᵢ − s·Vᵢ with Vᵢ = BᵢᵏAᵢᵏ (or, if the round did not merge it, with Vᵢ as it was:
/// then nothing of it is in W, and all of it lands in the next merge it joins).
public final class LoRAHead: LinearAdapters {
    public let layout: LoRALayout
    public let scale: Float
    /// Aᵢ, Bᵢ for every site, laid out by `layout`.
    public let factors: FloatBuffer
    public let grads: FloatBuffer
    /// Aᵢ⁰, Bᵢ⁰: the factors at the last merge (zero before the first, and always under reset-B).
    public let merged: FloatBuffer
    /// False while Vᵢ = 0, which skips the correction's products.
    public private(set) var hasCorrection = false
    /// Bᵢᵏ, Aᵢᵏ: the factors pushed for the round whose merge is still to be applied (`lte.overlap`,
    /// reset-less), as the merge will use them (dequantized); nil otherwise.
    public private(set) var pushed: FloatBuffer?
    /// ω: the weight, relative to s, of the pushed round's progress BᵢᵏAᵢᵏ − Vᵢ while it is in flight.
    private var pushedWeight: Float = 0
    /// True while the weights this head sits on hold its effective weight (from `markFolded` until
    /// the factors move: `unfold`).
    public private(set) var isFolded = false
    /// The correction's products run only while it is live and not folded.
    private var computesCorrection: Bool { (hasCorrection || pushed != nil) && !isFolded }

    /// The head's effective weight besides W, as rank-r products Σₜ wₜ·s·Bₜ Aₜ: its term (w = 1,
    /// its own factors) first, then its corrections. Reset-less, between merges: −1 on Vᵢ. With a
    /// push in flight: −(1 − ω) on the pushed factors and −ω on Vᵢ, which with the term make
    /// ω·s·(BᵢᵏAᵢᵏ − Vᵢ) + s·(BᵢAᵢ − BᵢᵏAᵢᵏ).
    private var terms: [(weight: Float, factors: UnsafeMutablePointer<Float>)] {
        var t: [(weight: Float, factors: UnsafeMutablePointer<Float>)] = [(1, factors.pointer)]
        if let pushed {
            t.append((-(1 - pushedWeight), pushed.pointer))
            if hasCorrection { t.append((-pushedWeight, merged.pointer)) }
        } else if hasCorrection {
            t.append((-1, merged.pointer))
        }
        return t
    }

    // Forward cache for one batch shape: u = x Aᵀ and u⁰ = x A⁰ᵀ per site (rows, r); g scratch.
    private var rows = 0
    private var u: FloatBuffer, u0: FloatBuffer, g: FloatBuffer
    /// A rank of 8 or 16 takes ThinProducts' kernels for the four products the factor gradients
    /// need (wider ranks are faster in sgemm: `ThinProducts.pays`); those read their thin operand as (k × r), so Aᵀ and dAᵀ go through `aT`.
    private let thin: Bool
    private let aT: FloatBuffer
    /// The fold's stacked factors for one layer (allocated on the first fold).
    /// (At most three products: the term and two corrections.)
    private lazy var stacked = FloatBuffer(count: 3 * layout.rank * (layout.sites.map { $0.inFeatures + $0.outFeatures }.max() ?? 0))

    public init(layout: LoRALayout, scale: Float) {
        self.layout = layout
        self.scale = scale
        factors = FloatBuffer(count: layout.count)
        grads = FloatBuffer(count: layout.count)
        merged = FloatBuffer(count: layout.count)
        u = FloatBuffer(count: 0); u0 = FloatBuffer(count: 0); g = FloatBuffer(count: 0)
        thin = ThinProducts.pays(width: layout.rank)
        aT = FloatBuffer(count: thin ? layout.rank * (layout.sites.map(\.inFeatures).max() ?? 0) : 0)
    }

    /// Bᵢ = 0; Aᵢ with orthonormal rows (a different draw per head), scaled by √(n/r) (official code)
    /// or √(r/n) (the paper's text).
    public func initialize(seed: UInt64, head: Int, aInit: LoRAConfig.AInit) {
        var rng = SeededGenerator(seed: seed, stream: 0x10_0000 + UInt64(head))
        factors.zero()
        merged.zero()
        hasCorrection = false
        isFolded = false
        let r = layout.rank
        for s in layout.sites {
            let n = s.inFeatures
            let gain = aInit == .official ? (Float(n) / Float(r)).squareRoot() : (Float(r) / Float(n)).squareRoot()
            orthonormalRows(factors.pointer + s.a, rows: r, columns: n, rng: &rng)
            Vec.scale(factors.pointer + s.a, by: gain, count: r * n)
        }
    }

    /// Makes the cache fit a batch of `rows` rows (call once per batch shape, not per step).
    public func prepare(rows: Int) {
        guard rows != self.rows else { return }
        self.rows = rows
        let n = rows * layout.rank * layout.sites.count
        // u⁰ is only written by a head that computes its correction (one that is not folded).
        u = FloatBuffer(count: n); u0 = FloatBuffer(count: n, lazily: true); g = FloatBuffer(count: rows * layout.rank)
    }

    public func wraps(_ p: Projection) -> Bool { layout.projections.contains(p) }

    @inline(__always) private func cache(_ buf: FloatBuffer, _ s: LinearSite) -> UnsafeMutablePointer<Float> {
        buf.pointer + layout.position(s) * rows * layout.rank
    }

    // u = x Aᵀ (rows, r), kept for dB;  y (rows, out) += s·u Bᵀ − s·(x A⁰ᵀ) B⁰ᵀ unless folded into W
    // (with a push in flight, each correction of `terms` in turn through the u⁰ scratch)
    // The products are rank-r thin: with several threads each takes a slab of rows on a one-thread
    // BLAS (Parallel.slabs), which beats splitting every product over OpenBLAS's pool.
    public func forward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        precondition(rows == self.rows, "LoRAHead.prepare(rows:) was not called for this batch shape")
        let s = layout.site(site), r = layout.rank, n = s.inFeatures, m = s.outFeatures
        let f = factors.pointer, u = cache(self.u, site), u0 = cache(self.u0, site), aT = aT.pointer
        let corrections = computesCorrection ? terms.dropFirst() : []
        if thin { transpose(f + s.a, rows: r, columns: n, into: aT) }
        Parallel.slabs(rows) { i, k in
            if thin {
                ThinProducts.panel(x + i * ldx, ldx: ldx, rows: k, inner: n, aT, width: r, into: u + i * r)
            } else {
                GEMM.linear(x + i * ldx, f + s.a, u + i * r, rows: k, inFeatures: n, outFeatures: r, ldx: ldx)
            }
            if isFolded { return }
            GEMM.linear(u + i * r, f + s.b, y + i * ldy, rows: k, inFeatures: r, outFeatures: m, beta: 1, alpha: scale, ldy: ldy)
            for (w, v) in corrections {
                GEMM.linear(x + i * ldx, v + s.a, u0 + i * r, rows: k, inFeatures: n, outFeatures: r, ldx: ldx)
                GEMM.linear(u0 + i * r, v + s.b, y + i * ldy, rows: k, inFeatures: r, outFeatures: m, beta: 1, alpha: w * scale, ldy: ldy)
            }
        }
    }

    // g = dy B (rows, r);  dB += s·dyᵀ u;  dA += s·gᵀ x;  unless folded into W: dx += s·g A − s·(dy B⁰) A⁰
    public func backward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int,
                         dx: UnsafeMutablePointer<Float>, lddx: Int, rows: Int) {
        let s = layout.site(site), r = layout.rank, n = s.inFeatures, m = s.outFeatures
        let f = factors.pointer, d = grads.pointer, g = self.g.pointer, u = cache(self.u, site)
        let aT = aT.pointer
        Parallel.slabs(rows) { i, k in
            if thin {
                ThinProducts.panel(dy + i * lddy, ldx: lddy, rows: k, inner: m, f + s.b, width: r, into: g + i * r)
            } else {
                GEMM.linearInputGrad(dy + i * lddy, f + s.b, g + i * r, rows: k, inFeatures: r, outFeatures: m, lddy: lddy)
            }
            if isFolded { return }
            GEMM.linearInputGrad(g + i * r, f + s.a, dx + i * lddx, rows: k, inFeatures: n, outFeatures: r, beta: 1, alpha: scale, lddx: lddx)
        }
        // The factor gradients sum over all rows: slabs of dB's rows and of dA's columns instead.
        Parallel.slabs(m) { o, k in
            if thin {
                ThinProducts.gather(dy + o, ldx: lddy, rows: rows, inner: k, u, width: r, alpha: scale, into: d + s.b + o * r)
            } else {
                GEMM.linearWeightGrad(dy + o, u, d + s.b + o * r, rows: rows, inFeatures: r, outFeatures: k, alpha: scale, lddy: lddy)
            }
        }
        Parallel.slabs(n) { c, k in
            if thin {
                // dAᵀ (k × r) = s·xᵀ g into the scratch, then added to dA (r × n) transposed
                (aT + c * r).update(repeating: 0, count: k * r)
                ThinProducts.gather(x + c, ldx: ldx, rows: rows, inner: k, g, width: r, alpha: scale, into: aT + c * r)
                for j in 0..<r { for t in 0..<k { d[s.a + j * n + c + t] += aT[(c + t) * r + j] } }
            } else {
                GEMM.sgemm(transA: true, transB: false, m: r, n: k, k: rows, alpha: scale, a: g, lda: r, b: x + c, ldb: ldx,
                           beta: 1, c: d + s.a + c, ldc: n)
            }
        }
        for (w, v) in computesCorrection ? terms.dropFirst() : [] {
            Parallel.slabs(rows) { i, k in
                GEMM.linearInputGrad(dy + i * lddy, v + s.b, g + i * r, rows: k, inFeatures: r, outFeatures: m, lddy: lddy)
                GEMM.linearInputGrad(g + i * r, v + s.a, dx + i * lddx, rows: k, inFeatures: n, outFeatures: r, beta: 1, alpha: w * scale, lddx: lddx)
            }
        }
    }

    /// After a merge this head took part in: Vᵢ ← BᵢAᵢ (reset-less), or Bᵢ ← 0 and Vᵢ = 0 (reset-B).
    public func didMerge(rule: LoRAConfig.MergeRule) {
        isFolded = false
        pushed = nil
        switch rule {
        case .resetless:
            merged.copy(from: factors)
            hasCorrection = true
        case .resetB:
            layout.zeroB(in: factors.pointer)
            hasCorrection = false
        }
    }

    /// Restores Vᵢ from stored factors (resuming, or a worker joining mid-run).
    public func setMerged(from source: UnsafePointer<Float>) {
        merged.pointer.update(from: source, count: merged.count)
        hasCorrection = !Vec.allZero(merged.pointer, count: merged.count)
        pushed = nil
        isFolded = false
    }

    /// This head pushed `values` (its factors as the merge will use them) for a round whose merge
    /// is applied later (`lte.overlap`, reset-less rule only: under reset-B, W gains (s/N)·BᵢAᵢ and
    /// Bᵢ is zeroed at the merge, which this fold does not model; LoRAConfig refuses the pair). Until
    /// `setMerged` or `pushWasNotMerged`, it trains on W + ω·s·(values − Vᵢ) + s·(BᵢAᵢ − values) with
    /// ω = 1/N + c·(1 − 1/N): N = `totalHeads`, the merge's N; c = `extrapolation`. `values` is kept,
    /// not copied: the caller must not change it.
    public func awaitMerge(of values: FloatBuffer, totalHeads: Int, extrapolation: Float) {
        precondition(values.count == factors.count && totalHeads > 0 && (0...1).contains(extrapolation),
                     "LoRAHead.awaitMerge: factors of another layout, or c outside [0, 1]")
        pushed = values
        let share = 1 / Float(totalHeads)
        pushedWeight = share + extrapolation * (1 - share)
        isFolded = false
    }

    /// The merge of the push in flight was applied without this head (it was excluded, or late):
    /// W holds nothing of it, so the head is back to W + s·BᵢAᵢ − s·Vᵢ with Vᵢ as it was, and its
    /// pushed progress lands, whole, in the next merge it joins.
    public func pushWasNotMerged() {
        pushed = nil
        isFolded = false
    }

    /// Adds this head's term and correction, s·BᵢAᵢ − s·Bᵢ⁰Aᵢ⁰, to the weights of `sites` held in `w`,
    /// which starts at offset `base` of the model's layout (LayerFold: one tensor group, already
    /// holding W). The head's products then skip those terms while `isFolded` (`markFolded` …
    /// `unfold`, around a step).
    ///
    /// With corrections, the terms are one product of inner dimension t·r (t = 2, or 3 with a push in
    /// flight), [w₁B₁ | w₂B₂ | …] · [A₁ ; A₂ ; …] (`terms`; with one correction [B | −B⁰] · [A ; A⁰]),
    /// staged in `stacked`: one pass over W instead of t.
    public func fold(_ sites: [LoRALayout.Site], into w: UnsafeMutablePointer<Float>, at base: Int) {
        let f = factors.pointer, r = layout.rank, st = stacked.pointer, terms = terms, k = terms.count * r
        for s in sites {
            let m = s.outFeatures, n = s.inFeatures, w = w + (s.weight - base)
            guard terms.count > 1 else {
                // W (out, in) += s · B (out, r) · A (r, in)
                GEMM.sgemm(transA: false, transB: false, m: m, n: n, k: r, alpha: scale, a: f + s.b, lda: r,
                           b: f + s.a, ldb: n, beta: 1, c: w, ldc: n)
                continue
            }
            // stacked: [A₁ ; A₂ ; …] (k, in), then [w₁B₁ | w₂B₂ | …] (out, k); w = ±1 is exact
            let q = st, p = st + k * n
            for (t, term) in terms.enumerated() {
                (q + t * r * n).update(from: term.factors + s.a, count: r * n)
                let b = term.factors + s.b
                for o in 0..<m { for j in 0..<r { p[o * k + t * r + j] = term.weight * b[o * r + j] } }
            }
            GEMM.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: scale, a: p, lda: k,
                       b: q, ldb: n, beta: 1, c: w, ldc: n)
        }
    }

    /// From here until `unfold`, the weights this head reads hold its effective weight (a LayerFold
    /// with this head folded in): its products skip the term and the correction.
    public func markFolded() { isFolded = true }

    /// The factors moved (or the weights were overwritten): the effective weight is no longer there.
    public func unfold() { isFolded = false }
}

/// t (columns × rows) = aᵀ, a (rows × columns) row-major.
func transpose(_ a: UnsafePointer<Float>, rows: Int, columns: Int, into t: UnsafeMutablePointer<Float>) {
    for i in 0..<rows { for j in 0..<columns { t[j * rows + i] = a[i * columns + j] } }
}

/// Fills `rows`×`columns` (rows ≤ columns) with a Gaussian draw whose rows are then made orthonormal
/// by modified Gram–Schmidt in double precision.
func orthonormalRows(_ p: UnsafeMutablePointer<Float>, rows: Int, columns n: Int, rng: inout SeededGenerator) {
    precondition(rows <= n, "rank \(rows) exceeds the layer's input width \(n)")
    var m = (0..<(rows * n)).map { _ in Double(rng.nextNormal()) }
    for i in 0..<rows {
        for j in 0..<i {
            var dot = 0.0
            for k in 0..<n { dot += m[i * n + k] * m[j * n + k] }
            for k in 0..<n { m[i * n + k] -= dot * m[j * n + k] }
        }
        var norm = 0.0
        for k in 0..<n { norm += m[i * n + k] * m[i * n + k] }
        norm = norm.squareRoot()
        for k in 0..<n {
            m[i * n + k] /= norm
            p[i * n + k] = Float(m[i * n + k])
        }
    }
}
