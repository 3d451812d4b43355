import Foundation
import XCTest
@testable import LTENumerics

/// Each kernel against a naive double-precision reference written straight from its formula.
final class KernelReferenceTests: XCTestCase {
    var rng = SeededGenerator(seed: 42)

    func randoms(_ n: Int, std: Float = 1) -> [Float] { (0..<n).map { _ in rng.nextNormal() * std } }

    func assertClose(_ a: [Float], _ b: [Double], tol: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThan(worst, tol, "\(what): worst error \(worst)", file: file, line: line)
    }

    func testFastExpAgainstLibm() {
        var worst = 0.0
        for i in 0..<200_000 {
            let x = -87 + Float(i) * (175.0 / 200_000)
            let rel = abs(Double(fastExp(x)) - Foundation.exp(Double(x))) / Foundation.exp(Double(x))
            worst = max(worst, rel)
        }
        XCTAssertLessThan(worst, 3e-7, "fastExp relative error")
        XCTAssertEqual(fastExp(-200), 0, accuracy: 1e-37)
        XCTAssertTrue(fastExp(200).isFinite)
    }

    func testGEMMWrappersAgainstTripleLoop() {
        let (rows, inF, outF) = (7, 5, 6)
        let x = randoms(rows * inF), w = randoms(outF * inF), dy = randoms(rows * outF)
        var y = [Float](repeating: 0, count: rows * outF)
        var dx = [Float](repeating: 0, count: rows * inF)
        var dw = [Float](repeating: 0.5, count: outF * inF)   // weight grads accumulate
        GEMM.linear(x, w, &y, rows: rows, inFeatures: inF, outFeatures: outF)
        GEMM.linearInputGrad(dy, w, &dx, rows: rows, inFeatures: inF, outFeatures: outF)
        GEMM.linearWeightGrad(dy, x, &dw, rows: rows, inFeatures: inF, outFeatures: outF)
        var ry = [Double](), rdx = [Double](), rdw = [Double]()
        for r in 0..<rows { for o in 0..<outF { ry.append((0..<inF).reduce(0.0) { $0 + Double(x[r * inF + $1] * w[o * inF + $1]) }) } }
        for r in 0..<rows { for i in 0..<inF { rdx.append((0..<outF).reduce(0.0) { $0 + Double(dy[r * outF + $1] * w[$1 * inF + i]) }) } }
        for o in 0..<outF { for i in 0..<inF { rdw.append(0.5 + (0..<rows).reduce(0.0) { $0 + Double(dy[$1 * outF + o] * x[$1 * inF + i]) }) } }
        assertClose(y, ry, tol: 1e-5, "linear")
        assertClose(dx, rdx, tol: 1e-5, "linearInputGrad")
        assertClose(dw, rdw, tol: 1e-5, "linearWeightGrad")
    }

    /// Both thin kernels over shapes with remainders (rows and k not multiples of 8), a leading
    /// dimension wider than k, widths 8 and 16, and C accumulating onto what it held.
    func testThinProductsAgainstTripleLoop() {
        for (rows, k, w, ldx) in [(19, 13, 8, 13), (8, 16, 16, 21), (3, 7, 8, 7), (300, 9, 8, 11), (23, 11, 16, 14), (263, 6, 32, 6)] {
            let x = randoms(rows * ldx), p = randoms(k * w), y = randoms(rows * w)
            let c0 = randoms(k * w), alpha: Float = 0.75
            var out = [Float](repeating: .nan, count: rows * w), c = c0
            ThinProducts.panel(x, ldx: ldx, rows: rows, inner: k, p, width: w, into: &out)
            ThinProducts.gather(x, ldx: ldx, rows: rows, inner: k, y, width: w, alpha: alpha, into: &c)
            var refOut = [Double](), refC = [Double]()
            for i in 0..<rows { for j in 0..<w { refOut.append((0..<k).reduce(0.0) { $0 + Double(x[i * ldx + $1]) * Double(p[$1 * w + j]) }) } }
            for t in 0..<k { for j in 0..<w {
                refC.append(Double(c0[t * w + j]) + Double(alpha) * (0..<rows).reduce(0.0) { $0 + Double(x[$1 * ldx + t]) * Double(y[$1 * w + j]) })
            } }
            assertClose(out, refOut, tol: 1e-5, "panel \(rows)×\(k)·\(k)×\(w)")
            assertClose(c, refC, tol: 1e-4, "gather \(k)×\(w) over \(rows) rows")
        }
        XCTAssertFalse(ThinProducts.fits(width: 12))
        XCTAssertTrue(ThinProducts.fits(width: 64))
    }

    /// The 16-wide kernels give every element the bits the 8-wide ones give it: a width-16 product
    /// equals its two halves computed as width-8 products, bit for bit (rows and k with remainders).
    func testThinProducts16WideMatch8WideBitForBit() {
        let (rows, k, ldx) = (141, 19, 23)
        let x = randoms(rows * ldx), p = randoms(k * 16), y = randoms(rows * 16), c0 = randoms(k * 16)
        var out = [Float](repeating: .nan, count: rows * 16), c = c0
        ThinProducts.panel(x, ldx: ldx, rows: rows, inner: k, p, width: 16, into: &out)
        ThinProducts.gather(x, ldx: ldx, rows: rows, inner: k, y, width: 16, alpha: 0.75, into: &c)
        for half in 0..<2 {
            func columns(_ m: [Float], _ n: Int) -> [Float] { (0..<n).flatMap { i in m[(i * 16 + half * 8)..<(i * 16 + half * 8 + 8)] } }
            var outHalf = [Float](repeating: .nan, count: rows * 8), cHalf = columns(c0, k)
            ThinProducts.panel(x, ldx: ldx, rows: rows, inner: k, columns(p, k), width: 8, into: &outHalf)
            ThinProducts.gather(x, ldx: ldx, rows: rows, inner: k, columns(y, rows), width: 8, alpha: 0.75, into: &cHalf)
            XCTAssertEqual(columns(out, rows), outHalf, "panel, columns \(half * 8)..<\(half * 8 + 8)")
            XCTAssertEqual(columns(c, k), cHalf, "gather, columns \(half * 8)..<\(half * 8 + 8)")
        }
    }

    func testRMSNormForwardAndBackward() {
        let (rows, dim) = (3, 37)
        let x = randoms(rows * dim), g = randoms(dim), dy = randoms(rows * dim)
        var y = [Float](repeating: 0, count: rows * dim), rstd = [Float](repeating: 0, count: rows)
        var dx = [Float](repeating: 0, count: rows * dim), dg = [Float](repeating: 0, count: dim)
        RMSNorm.forward(x: x, gain: g, y: &y, rstd: &rstd, rows: rows, dim: dim, eps: 1e-5)
        RMSNorm.backward(dy: dy, x: x, gain: g, rstd: rstd, dx: &dx, dgain: &dg, rows: rows, dim: dim)
        var ry = [Double](), rdx = [Double](), rdg = [Double](repeating: 0, count: dim)
        for r in 0..<rows {
            let xr = (0..<dim).map { Double(x[r * dim + $0]) }
            let s = 1 / ((xr.map { $0 * $0 }.reduce(0, +) / Double(dim)) + 1e-5).squareRoot()
            ry += (0..<dim).map { xr[$0] * s * Double(g[$0]) }
            let dot = (0..<dim).reduce(0.0) { $0 + Double(dy[r * dim + $1]) * Double(g[$1]) * xr[$1] }
            rdx += (0..<dim).map { s * Double(dy[r * dim + $0]) * Double(g[$0]) - xr[$0] * s * s * s / Double(dim) * dot }
            for j in 0..<dim { rdg[j] += Double(dy[r * dim + j]) * xr[j] * s }
        }
        assertClose(y, ry, tol: 1e-5, "rmsnorm forward")
        assertClose(dx, rdx, tol: 1e-4, "rmsnorm dx")
        assertClose(dg, rdg, tol: 1e-4, "rmsnorm dgain")
    }

    func testSwiGLUForwardAndBackward() {
        let (rows, f) = (2, 19)
        let gu = randoms(rows * 2 * f, std: 3), dh = randoms(rows * f)
        var h = [Float](repeating: 0, count: rows * f), dgu = [Float](repeating: 0, count: rows * 2 * f)
        SwiGLU.forward(gateUp: gu, h: &h, rows: rows, hidden: f)
        SwiGLU.backward(dh: dh, gateUp: gu, dGateUp: &dgu, rows: rows, hidden: f)
        var rh = [Double](), rd = [Double]()
        for r in 0..<rows {
            var da = [Double](), du = [Double]()
            for j in 0..<f {
                let a = Double(gu[r * 2 * f + j]), u = Double(gu[r * 2 * f + f + j]), g = Double(dh[r * f + j])
                let s = 1 / (1 + Foundation.exp(-a))
                rh.append(a * s * u)
                du.append(g * a * s)
                da.append(g * u * (s + a * s * (1 - s)))
            }
            rd += da + du
        }
        assertClose(h, rh, tol: 1e-5, "swiglu forward")
        assertClose(dgu, rd, tol: 1e-5, "swiglu backward")
    }

    func testCausalSoftmaxForwardAndBackward() {
        let t = 9, scale: Float = 0.37
        let s = randoms(t * t, std: 2), dp = randoms(t * t)
        var p = s
        Softmax.causalForward(&p, seqLen: t, scale: scale)
        var d = dp
        Softmax.causalBackward(p: p, dp: &d, seqLen: t, scale: scale)
        var rp = [Double](), rd = [Double]()
        for i in 0..<t {
            let z = (0...i).map { Double(s[i * t + $0] * scale) }
            let m = z.max()!
            let e = z.map { Foundation.exp($0 - m) }
            let sum = e.reduce(0, +)
            let pr = e.map { $0 / sum } + [Double](repeating: 0, count: t - i - 1)
            rp += pr
            let dot = (0...i).reduce(0.0) { $0 + pr[$1] * Double(dp[i * t + $1]) }
            rd += (0..<t).map { j in j <= i ? Double(scale) * pr[j] * (Double(dp[i * t + j]) - dot) : 0 }
        }
        assertClose(p, rp, tol: 1e-6, "causal softmax")
        assertClose(d, rd, tol: 1e-5, "causal softmax backward")
    }

    func testCrossEntropyLossAndGradient() {
        let (rows, v) = (4, 11)
        let logits = randoms(rows * v, std: 3)
        let targets: [Int32] = [3, -1, 0, 10]   // row 1 is ignored
        var l = logits
        let loss = CrossEntropy.forwardBackward(logits: &l, targets: targets, rows: rows, vocab: v)
        var refLoss = 0.0, refGrad = [Double]()
        for r in 0..<rows {
            let z = (0..<v).map { Double(logits[r * v + $0]) }
            let m = z.max()!
            let lse = m + Foundation.log(z.map { Foundation.exp($0 - m) }.reduce(0, +))
            if targets[r] < 0 { refGrad += [Double](repeating: 0, count: v); continue }
            refLoss += (lse - z[Int(targets[r])]) / 3
            refGrad += (0..<v).map { (Foundation.exp(z[$0] - lse) - ($0 == Int(targets[r]) ? 1 : 0)) / 3 }
        }
        XCTAssertEqual(Double(loss), refLoss, accuracy: 1e-5)
        assertClose(l, refGrad, tol: 1e-6, "cross-entropy gradient")
    }

    func testRoPEIsHuggingFaceRotateHalfAndInvertible() {
        let (hd, heads, t) = (8, 2, 5)
        let rope = RoPE(headDim: hd, maxPositions: 16, theta: 10_000)
        let x = randoms(t * heads * hd)
        var y = x
        rope.rotate(&y, rows: t, seqLen: t, heads: heads, stride: heads * hd)
        var ref = [Double]()
        for pos in 0..<t {
            for h in 0..<heads {
                let v = (0..<hd).map { Double(x[pos * heads * hd + h * hd + $0]) }
                // HF: q·cos + rotate_half(q)·sin, rotate_half(q) = [−q₂, q₁], emb = cat(freqs, freqs)
                let freqs = (0..<(hd / 2)).map { Double(pos) / Foundation.pow(10_000, Double(2 * $0) / Double(hd)) }
                let emb = freqs + freqs
                let rot = (0..<hd).map { $0 < hd / 2 ? -v[$0 + hd / 2] : v[$0 - hd / 2] }
                ref += (0..<hd).map { v[$0] * Foundation.cos(emb[$0]) + rot[$0] * Foundation.sin(emb[$0]) }
            }
        }
        assertClose(y, ref, tol: 1e-5, "rope")
        rope.rotate(&y, rows: t, seqLen: t, heads: heads, stride: heads * hd, inverse: true)
        assertClose(y, x.map(Double.init), tol: 1e-5, "rope inverse")
    }

    func testAdamWStepAgainstFormula() {
        let n = 13
        var p = randoms(n), m = randoms(n, std: 0.1), v = randoms(n, std: 0.1).map { $0 * $0 }
        let g = randoms(n)
        let (p0, m0, v0) = (p, m, v)
        let (lr, b1, b2, eps, wd, t): (Float, Float, Float, Float, Float, Int) = (0.01, 0.9, 0.99, 1e-8, 0.1, 5)
        AdamWKernel.step(param: &p, grad: g, m: &m, v: &v, count: n, lr: lr, beta1: b1, beta2: b2, eps: eps, weightDecay: wd, step: t)
        var rp = [Double]()
        for i in 0..<n {
            let mi = Double(b1) * Double(m0[i]) + (1 - Double(b1)) * Double(g[i])
            let vi = Double(b2) * Double(v0[i]) + (1 - Double(b2)) * Double(g[i]) * Double(g[i])
            let mh = mi / (1 - Foundation.pow(Double(b1), Double(t))), vh = vi / (1 - Foundation.pow(Double(b2), Double(t)))
            rp.append(Double(p0[i]) - Double(lr) * (mh / (vh.squareRoot() + Double(eps)) + Double(wd) * Double(p0[i])))
        }
        assertClose(p, rp, tol: 1e-6, "adamw")
    }

    func testDotAndSumOfSquares() {
        let x = randoms(1003), y = randoms(1003)
        XCTAssertEqual(Double(Vec.dot(x, y, count: 1003)), zip(x, y).reduce(0.0) { $0 + Double($1.0 * $1.1) }, accuracy: 1e-3)
        let big = randoms(20_000)
        XCTAssertEqual(Vec.sumOfSquares(big, count: big.count), big.reduce(0.0) { $0 + Double($1 * $1) }, accuracy: 1e-2)
    }
}
