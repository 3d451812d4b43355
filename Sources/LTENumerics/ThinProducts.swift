/// The two products a low-rank adapter's gradients need, for widths that are a multiple of 8 (the
/// rank r): one AVX2 register holds a row of the thin operand.
///
///   panel:  out (rows × w) = X (rows × k) · P (k × w)            u = x Aᵀ,  g = dy B
///   gather: C (k × w) += α · Xᵀ (k × rows) · Y (rows × w)        dB = s·dyᵀ u,  dAᵀ = s·xᵀ g
///
/// OpenBLAS packs X, the large operand, into panels before every product, and for w = 8 that copy
/// costs about as much as the 16 flops each element then takes part in: there these run at 72–83
/// GF/s, against a peak of 125. Here X is read in place, each element broadcast once against a
/// register of the thin operand, with eight independent accumulators to cover the FMA latency:
/// 103–109 GF/s on one Zen core (README, Performance).
///
/// The wider the thin operand, the more flops each element of X takes part in, and the less
/// OpenBLAS's packing weighs: from a width of 32 on, sgemm is the faster one (docs/performance.md:
/// at rank 64 and k = 768 it ran 1.2× the panel and 1.7× the gather kernel, at k = 2048 1.7× and
/// 4×), so the adapters take these kernels for widths 8 and 16 only (`pays`).
public enum ThinProducts {
    public typealias Row = SIMD8<Float>

    /// Whether these kernels can compute a thin operand of width `w` (a multiple of 8).
    @inline(__always) public static func fits(width w: Int) -> Bool { w > 0 && w % 8 == 0 }

    /// Whether a thin operand of width `w` is faster here than in sgemm (else: GEMM).
    @inline(__always) public static func pays(width w: Int) -> Bool { fits(width: w) && w <= 16 }

    /// out (rows × w, ld w) = X (rows × k, ld ldx) · P (k × w, ld w).
    public static func panel(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, inner k: Int,
                             _ p: UnsafePointer<Float>, width w: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(fits(width: w), "ThinProducts: width \(w) is not a multiple of 8")
        if w % 16 == 0 { return panel16(x, ldx: ldx, rows: rows, inner: k, p, width: w, into: out) }
        for c in stride(from: 0, to: w, by: 8) {
            var i = 0
            // Eight rows at a time: eight accumulators, one panel row loaded per step of k. Pointers
            // step by themselves (no index products, no overflow checks in the loop).
            while i + 8 <= rows {
                let x0 = x + i &* ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
                let x4 = x3 + ldx, x5 = x4 + ldx, x6 = x5 + ldx, x7 = x6 + ldx
                var a0 = Row(), a1 = Row(), a2 = Row(), a3 = Row(), a4 = Row(), a5 = Row(), a6 = Row(), a7 = Row()
                var pt = p + c
                var t = 0
                while t < k {
                    let pr = Vec.load8(pt)
                    a0.addProduct(pr, x0[t]); a1.addProduct(pr, x1[t]); a2.addProduct(pr, x2[t]); a3.addProduct(pr, x3[t])
                    a4.addProduct(pr, x4[t]); a5.addProduct(pr, x5[t]); a6.addProduct(pr, x6[t]); a7.addProduct(pr, x7[t])
                    pt += w
                    t &+= 1
                }
                let o = out + i &* w + c
                Vec.store8(a0, o); Vec.store8(a1, o + w); Vec.store8(a2, o + 2 &* w); Vec.store8(a3, o + 3 &* w)
                Vec.store8(a4, o + 4 &* w); Vec.store8(a5, o + 5 &* w); Vec.store8(a6, o + 6 &* w); Vec.store8(a7, o + 7 &* w)
                i &+= 8
            }
            while i < rows {
                let xi = x + i * ldx
                var a = Row()
                for t in 0..<k { a.addProduct(Vec.load8(p + t * w + c), xi[t]) }
                Vec.store8(a, out + i * w + c)
                i += 1
            }
        }
    }

    /// Rows of X the gather kernels take at a time (a block of X stays in cache while C's columns sweep it).
    static let block = 128

    /// C (k × w, ld w) += α · Xᵀ Y, X (rows × k, ld ldx), Y (rows × w, ld w): a sum over the rows.
    /// The rows go in blocks, so a block of X stays in cache while every group of eight of its
    /// columns sweeps it; each block's sum is added to C (a fixed order: the same bits every time).
    public static func gather(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, inner k: Int,
                              _ y: UnsafePointer<Float>, width w: Int, alpha: Float, into cOut: UnsafeMutablePointer<Float>) {
        precondition(fits(width: w), "ThinProducts: width \(w) is not a multiple of 8")
        if w % 16 == 0 { return gather16(x, ldx: ldx, rows: rows, inner: k, y, width: w, alpha: alpha, into: cOut) }
        for i0 in stride(from: 0, to: rows, by: block) {
            let i1 = min(rows, i0 + block)
            for c in stride(from: 0, to: w, by: 8) {
                var j = 0
                while j + 8 <= k {
                    var a0 = Row(), a1 = Row(), a2 = Row(), a3 = Row(), a4 = Row(), a5 = Row(), a6 = Row(), a7 = Row()
                    var xi = x + i0 &* ldx + j, yi = y + i0 &* w + c
                    for _ in i0..<i1 {
                        let yr = Vec.load8(yi)
                        a0.addProduct(yr, xi[0]); a1.addProduct(yr, xi[1]); a2.addProduct(yr, xi[2]); a3.addProduct(yr, xi[3])
                        a4.addProduct(yr, xi[4]); a5.addProduct(yr, xi[5]); a6.addProduct(yr, xi[6]); a7.addProduct(yr, xi[7])
                        xi += ldx
                        yi += w
                    }
                    let o = cOut + j * w + c
                    Vec.store8(Vec.load8(o) + alpha * a0, o); Vec.store8(Vec.load8(o + w) + alpha * a1, o + w)
                    Vec.store8(Vec.load8(o + 2 * w) + alpha * a2, o + 2 * w); Vec.store8(Vec.load8(o + 3 * w) + alpha * a3, o + 3 * w)
                    Vec.store8(Vec.load8(o + 4 * w) + alpha * a4, o + 4 * w); Vec.store8(Vec.load8(o + 5 * w) + alpha * a5, o + 5 * w)
                    Vec.store8(Vec.load8(o + 6 * w) + alpha * a6, o + 6 * w); Vec.store8(Vec.load8(o + 7 * w) + alpha * a7, o + 7 * w)
                    j += 8
                }
                while j < k {
                    var a = Row()
                    for i in i0..<i1 { a.addProduct(Vec.load8(y + i * w + c), x[i * ldx + j]) }
                    Vec.store8(Vec.load8(cOut + j * w + c) + alpha * a, cOut + j * w + c)
                    j += 1
                }
            }
        }
    }

    // Widths that are a multiple of 16 take two registers of the thin operand at a time against four
    // rows (panel) or four columns (gather) of X: eight accumulators as above, but each element of X
    // loaded feeds two FMAs instead of one, and X is swept half as often (at rank 16: once). Every
    // element of the result sums its products in the same order as the 8-wide kernels: the same bits.

    /// `panel` for widths that are a multiple of 16.
    static func panel16(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, inner k: Int,
                        _ p: UnsafePointer<Float>, width w: Int, into out: UnsafeMutablePointer<Float>) {
        for c in stride(from: 0, to: w, by: 16) {
            var i = 0
            while i + 4 <= rows {
                let x0 = x + i &* ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
                var a0 = Row(), a1 = Row(), a2 = Row(), a3 = Row(), b0 = Row(), b1 = Row(), b2 = Row(), b3 = Row()
                var pt = p + c
                var t = 0
                while t < k {
                    let pa = Vec.load8(pt), pb = Vec.load8(pt + 8)
                    let e0 = x0[t], e1 = x1[t], e2 = x2[t], e3 = x3[t]
                    a0.addProduct(pa, e0); b0.addProduct(pb, e0); a1.addProduct(pa, e1); b1.addProduct(pb, e1)
                    a2.addProduct(pa, e2); b2.addProduct(pb, e2); a3.addProduct(pa, e3); b3.addProduct(pb, e3)
                    pt += w
                    t &+= 1
                }
                let o = out + i &* w + c
                Vec.store8(a0, o); Vec.store8(b0, o + 8); Vec.store8(a1, o + w); Vec.store8(b1, o + w + 8)
                Vec.store8(a2, o + 2 &* w); Vec.store8(b2, o + 2 &* w + 8); Vec.store8(a3, o + 3 &* w); Vec.store8(b3, o + 3 &* w + 8)
                i &+= 4
            }
            while i < rows {
                let xi = x + i * ldx
                var a = Row(), b = Row()
                for t in 0..<k { a.addProduct(Vec.load8(p + t * w + c), xi[t]); b.addProduct(Vec.load8(p + t * w + c + 8), xi[t]) }
                Vec.store8(a, out + i * w + c); Vec.store8(b, out + i * w + c + 8)
                i += 1
            }
        }
    }

    /// `gather` for widths that are a multiple of 16.
    static func gather16(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, inner k: Int,
                         _ y: UnsafePointer<Float>, width w: Int, alpha: Float, into cOut: UnsafeMutablePointer<Float>) {
        for i0 in stride(from: 0, to: rows, by: block) {
            let i1 = min(rows, i0 + block)
            for c in stride(from: 0, to: w, by: 16) {
                var j = 0
                while j + 4 <= k {
                    var a0 = Row(), a1 = Row(), a2 = Row(), a3 = Row(), b0 = Row(), b1 = Row(), b2 = Row(), b3 = Row()
                    var xi = x + i0 &* ldx + j, yi = y + i0 &* w + c
                    for _ in i0..<i1 {
                        let ya = Vec.load8(yi), yb = Vec.load8(yi + 8)
                        let e0 = xi[0], e1 = xi[1], e2 = xi[2], e3 = xi[3]
                        a0.addProduct(ya, e0); b0.addProduct(yb, e0); a1.addProduct(ya, e1); b1.addProduct(yb, e1)
                        a2.addProduct(ya, e2); b2.addProduct(yb, e2); a3.addProduct(ya, e3); b3.addProduct(yb, e3)
                        xi += ldx
                        yi += w
                    }
                    let o = cOut + j &* w + c
                    Vec.store8(Vec.load8(o) + alpha * a0, o); Vec.store8(Vec.load8(o + 8) + alpha * b0, o + 8)
                    Vec.store8(Vec.load8(o + w) + alpha * a1, o + w); Vec.store8(Vec.load8(o + w + 8) + alpha * b1, o + w + 8)
                    Vec.store8(Vec.load8(o + 2 &* w) + alpha * a2, o + 2 &* w); Vec.store8(Vec.load8(o + 2 &* w + 8) + alpha * b2, o + 2 &* w + 8)
                    Vec.store8(Vec.load8(o + 3 &* w) + alpha * a3, o + 3 &* w); Vec.store8(Vec.load8(o + 3 &* w + 8) + alpha * b3, o + 3 &* w + 8)
                    j &+= 4
                }
                while j < k {
                    var a = Row(), b = Row()
                    for i in i0..<i1 {
                        a.addProduct(Vec.load8(y + i * w + c), x[i * ldx + j]); b.addProduct(Vec.load8(y + i * w + c + 8), x[i * ldx + j])
                    }
                    let o = cOut + j * w + c
                    Vec.store8(Vec.load8(o) + alpha * a, o); Vec.store8(Vec.load8(o + 8) + alpha * b, o + 8)
                    j += 1
                }
            }
        }
    }
}
