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

    /// C (k × w, ld w) += α · Xᵀ Y, X (rows × k, ld ldx), Y (rows × w, ld w): a sum over the rows.
    /// The rows go in blocks, so a block of X stays in cache while every group of eight of its
    /// columns sweeps it; each block's sum is added to C (a fixed order: the same bits every time).
    public static func gather(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, inner k: Int,
                              _ y: UnsafePointer<Float>, width w: Int, alpha: Float, into cOut: UnsafeMutablePointer<Float>) {
        precondition(fits(width: w), "ThinProducts: width \(w) is not a multiple of 8")
        let block = 128
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
}
