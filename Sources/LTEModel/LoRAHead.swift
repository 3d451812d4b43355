import Foundation
import LTENumerics

/// One LTE head: low-rank factors (Aᵢ, Bᵢ) on every wrapped linear layer, and the copy of them taken
/// at the head's last merge (Aᵢ⁰, Bᵢ⁰), whose product is the correction Vᵢ.
///
/// Wrapped layer, for this head on its own data (DESIGN.md §2):
///   y = W x + s·Bᵢ Aᵢ x − s·Vᵢ x,   Vᵢ = Bᵢ⁰ Aᵢ⁰ (kept as two factors, never as a dense matrix)
/// so right after a reset-less merge the head sees exactly the merged W.
public final class LoRAHead: LinearAdapters {
    public let layout: LoRALayout
    public let scale: Float
    /// Aᵢ, Bᵢ for every site, laid out by `layout`.
    public let factors: FloatBuffer
    public let grads: FloatBuffer
    /// Aᵢ⁰, Bᵢ⁰: the factors at the last merge (zero before the first, and always under reset-B).
    public let merged: FloatBuffer
    /// False while Vᵢ = 0, which skips the correction's two products.
    public private(set) var hasCorrection = false

    // Forward cache for one batch shape: U = x [Aᵢ; Aᵢ⁰]ᵀ per site (rows, 2r), and G scratch.
    private var rows = 0
    private var u: FloatBuffer, g: FloatBuffer
    // The two terms as one rank-2r product, so each costs two GEMM calls instead of four:
    //   s·BᵢAᵢx − s·Bᵢ⁰Aᵢ⁰x = s·[Bᵢ | −Bᵢ⁰] [Aᵢ; Aᵢ⁰] x.
    // Per site, stackedA (2r, n) and stackedB (m, 2r) at `stackOffset`; refreshed from `factors` at
    // each forward.
    private let stackedA: FloatBuffer, stackedB: FloatBuffer
    private let stackOffset: [(a: Int, b: Int)]

    public init(layout: LoRALayout, scale: Float) {
        self.layout = layout
        self.scale = scale
        factors = FloatBuffer(count: layout.count)
        grads = FloatBuffer(count: layout.count)
        merged = FloatBuffer(count: layout.count)
        var offsets: [(a: Int, b: Int)] = [], a = 0, b = 0
        for site in layout.sites {
            offsets.append((a, b))
            a += 2 * layout.rank * site.inFeatures; b += 2 * layout.rank * site.outFeatures
        }
        stackOffset = offsets
        stackedA = FloatBuffer(count: a)
        stackedB = FloatBuffer(count: b)
        u = FloatBuffer(count: 0); g = FloatBuffer(count: 0)
    }

    /// Bᵢ = 0; Aᵢ with orthonormal rows (a different draw per head), scaled by √(n/r) (official code)
    /// or √(r/n) (the paper's text).
    public func initialize(seed: UInt64, head: Int, aInit: LoRAConfig.AInit) {
        var rng = SeededGenerator(seed: seed, stream: 0x10_0000 + UInt64(head))
        factors.zero()
        merged.zero()
        hasCorrection = false
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
        u = FloatBuffer(count: rows * 2 * layout.rank * layout.sites.count)
        g = FloatBuffer(count: rows * 2 * layout.rank)
    }

    public func wraps(_ p: Projection) -> Bool { layout.projections.contains(p) }

    /// The rank of this step's products: r, or 2r while the correction term is live.
    private var width: Int { hasCorrection ? 2 * layout.rank : layout.rank }

    /// stackedA = [A; A⁰] (2r, n) and stackedB = [B | −B⁰] (m, 2r) of one site, from the current
    /// factors.
    private func stack(_ s: LoRALayout.Site, at o: (a: Int, b: Int)) {
        let r = layout.rank, n = s.inFeatures, m = s.outFeatures
        let f = factors.pointer, v = merged.pointer, a = stackedA.pointer + o.a, b = stackedB.pointer + o.b
        a.update(from: f + s.a, count: r * n)
        (a + r * n).update(from: v + s.a, count: r * n)
        for o in 0..<m {
            (b + o * 2 * r).update(from: f + s.b + o * r, count: r)
            for j in 0..<r { b[o * 2 * r + r + j] = -v[s.b + o * r + j] }
        }
    }

    // U (rows, w) = x [A; A⁰]ᵀ;  y (rows, out) += s·U [B | −B⁰]ᵀ   (w = r without correction)
    public func forward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        precondition(rows == self.rows, "LoRAHead.prepare(rows:) was not called for this batch shape")
        let i = layout.position(site), s = layout.sites[i], w = width
        let u = self.u.pointer + i * rows * 2 * layout.rank
        if hasCorrection {
            let o = stackOffset[i]
            stack(s, at: o)
            GEMM.linear(x, stackedA.pointer + o.a, u, rows: rows, inFeatures: s.inFeatures, outFeatures: w, ldx: ldx)
            GEMM.linear(u, stackedB.pointer + o.b, y, rows: rows, inFeatures: w, outFeatures: s.outFeatures, beta: 1, alpha: scale, ldy: ldy)
        } else {
            let f = factors.pointer
            GEMM.linear(x, f + s.a, u, rows: rows, inFeatures: s.inFeatures, outFeatures: w, ldx: ldx)
            GEMM.linear(u, f + s.b, y, rows: rows, inFeatures: w, outFeatures: s.outFeatures, beta: 1, alpha: scale, ldy: ldy)
        }
    }

    // G (rows, w) = s·dy [B | −B⁰];  dB += s·dyᵀ U[:, :r];  dA += G[:, :r]ᵀ x;  dx += G [A; A⁰]
    public func backward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int,
                         dx: UnsafeMutablePointer<Float>, lddx: Int, rows: Int) {
        let i = layout.position(site), s = layout.sites[i], r = layout.rank, w = width
        let d = grads.pointer, g = self.g.pointer
        let u = self.u.pointer + i * rows * 2 * r
        // The stacked copies were made by this step's forward (the factors have not moved since).
        let a = hasCorrection ? stackedA.pointer + stackOffset[i].a : factors.pointer + s.a
        let b = hasCorrection ? stackedB.pointer + stackOffset[i].b : factors.pointer + s.b
        GEMM.linearInputGrad(dy, b, g, rows: rows, inFeatures: w, outFeatures: s.outFeatures, alpha: scale, lddy: lddy)
        GEMM.linearWeightGrad(dy, u, d + s.b, rows: rows, inFeatures: r, outFeatures: s.outFeatures, alpha: scale, lddy: lddy, ldx: w)
        GEMM.linearWeightGrad(g, x, d + s.a, rows: rows, inFeatures: s.inFeatures, outFeatures: r, lddy: w, ldx: ldx)
        GEMM.linearInputGrad(g, a, dx, rows: rows, inFeatures: s.inFeatures, outFeatures: w, beta: 1, lddx: lddx)
    }

    /// After a merge this head took part in: Vᵢ ← BᵢAᵢ (reset-less), or Bᵢ ← 0 and Vᵢ = 0 (reset-B).
    public func didMerge(rule: LoRAConfig.MergeRule) {
        switch rule {
        case .resetless:
            merged.copy(from: factors)
            hasCorrection = true
        case .resetB:
            for s in layout.sites { (factors.pointer + s.b).update(repeating: 0, count: s.outFeatures * layout.rank) }
            hasCorrection = false
        }
    }

    /// Restores Vᵢ from stored factors (resuming, or a worker joining mid-run).
    public func setMerged(from source: UnsafePointer<Float>) {
        merged.pointer.update(from: source, count: merged.count)
        hasCorrection = !Vec.allZero(merged.pointer, count: merged.count)
    }
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
