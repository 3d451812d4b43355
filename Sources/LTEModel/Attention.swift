import LTENumerics

/// Causal multi-head attention core, forward and backward side by side, over the fused q|k|v rows.
///
/// Layout: a row of qkv (BT, D + 2·kvD) is [q₀…q_{H−1} | k₀…k_{G−1} | v₀…v_{G−1}], head size hd.
/// With grouped-query attention (G < H), query head h reads key/value head h / (H/G).
/// Per (batch b, head h): S = Q Kᵀ (T,T), P = softmax(S/√hd) causally, O = P V (T,hd).
struct Attention {
    let heads: Int, kvHeads: Int, headDim: Int, dim: Int, kvDim: Int
    var ld: Int { dim + 2 * kvDim }
    var scale: Float { 1 / Float(headDim).squareRoot() }

    init(_ c: ModelConfig) {
        heads = c.heads; kvHeads = c.kvHeads; headDim = c.headDim; dim = c.dim; kvDim = c.kvDim
    }

    // Pointers to head h's Q and its group's K, V within sequence b.
    @inline(__always) private func q(_ base: UnsafeMutablePointer<Float>, _ b: Int, _ t: Int, _ h: Int) -> UnsafeMutablePointer<Float> {
        base + b * t * ld + h * headDim
    }
    @inline(__always) private func k(_ base: UnsafeMutablePointer<Float>, _ b: Int, _ t: Int, _ h: Int) -> UnsafeMutablePointer<Float> {
        base + b * t * ld + dim + (h / (heads / kvHeads)) * headDim
    }
    @inline(__always) private func v(_ base: UnsafeMutablePointer<Float>, _ b: Int, _ t: Int, _ h: Int) -> UnsafeMutablePointer<Float> {
        base + b * t * ld + dim + kvDim + (h / (heads / kvHeads)) * headDim
    }

    /// The per-head products are small: with several threads, each runs whole heads on a one-thread
    /// BLAS rather than every product being split across OpenBLAS's pool (which measured slower
    /// than one thread, the two pools fighting for 2 cores).
    private func perHead(_ count: Int, _ body: (Int) -> Void) {
        let threads = Parallel.threads
        if threads > 1 { BLASThreads.set(1) }
        Parallel.forEach(count, body)
        if threads > 1 { BLASThreads.set(threads) }
    }

    /// Causal blocks: the products below run over blocks of `block` query rows (or key columns), each
    /// only as far as causality reaches, skipping the upper triangle — a quarter of the work at two
    /// blocks. Entries past the diagonal inside a block are computed and then masked by the softmax.
    var block = 32

    /// `body(start, end)` for each block of rows (or columns) [start, end) of a T×T matrix.
    @inline(__always) private func blocks(_ t: Int, _ body: (Int, Int) -> Void) {
        for start in stride(from: 0, to: t, by: block) { body(start, min(t, start + block)) }
    }

    /// qkv (BT, ld) → probs (B, H, T, T), out (BT, D).
    func forward(qkv: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, batch: Int, seqLen t: Int) {
        perHead(batch * heads) { bh in
            let b = bh / heads, h = bh % heads
            let s = probs + bh * t * t
            let q = q(qkv, b, t, h), k = k(qkv, b, t, h), v = v(qkv, b, t, h), o = out + b * t * dim + h * headDim
            // S = Q Kᵀ  (T, T): query rows [i0, i1) against keys [0, i1)
            blocks(t) { i0, i1 in
                GEMM.sgemm(transA: false, transB: true, m: i1 - i0, n: i1, k: headDim,
                           a: q + i0 * ld, lda: ld, b: k, ldb: ld, c: s + i0 * t, ldc: t)
            }
            Softmax.causalForward(s, seqLen: t, scale: scale)
            // O = P V  (T, hd), written into the head's columns of out
            blocks(t) { i0, i1 in
                GEMM.sgemm(transA: false, transB: false, m: i1 - i0, n: headDim, k: i1,
                           a: s + i0 * t, lda: t, b: v, ldb: ld, c: o + i0 * dim, ldc: dim)
            }
        }
    }

    /// dOut (BT, D) → dQKV (BT, ld), overwritten. dProbs is scratch of the probs' size.
    /// Work is split by (batch, kv group) so the K/V gradients a group accumulates have one writer.
    func backward(dOut: UnsafeMutablePointer<Float>, qkv: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                  dProbs: UnsafeMutablePointer<Float>, dQKV: UnsafeMutablePointer<Float>, batch: Int, seqLen t: Int) {
        let group = heads / kvHeads
        perHead(batch * kvHeads) { bg in
            let b = bg / kvHeads, g = bg % kvHeads
            for h in (g * group)..<((g + 1) * group) {
                let bh = b * heads + h
                let p = probs + bh * t * t, dp = dProbs + bh * t * t
                let dO = dOut + b * t * dim + h * headDim
                let q = q(qkv, b, t, h), k = k(qkv, b, t, h), v = v(qkv, b, t, h)
                let dQ = self.q(dQKV, b, t, h), dK = self.k(dQKV, b, t, h), dV = self.v(dQKV, b, t, h)
                let beta: Float = h == g * group ? 0 : 1   // the group's first head overwrites dK, dV
                // Block i0..<i1 is a block of query rows for dP and dQ, and of key columns for dV and dK
                // (keys [i0, i1) receive from queries [i0, T)).
                blocks(t) { i0, i1 in
                    // dP = dO Vᵀ  (T, T), rows [i0, i1) against keys [0, i1)
                    GEMM.sgemm(transA: false, transB: true, m: i1 - i0, n: i1, k: headDim,
                               a: dO + i0 * dim, lda: dim, b: v, ldb: ld, c: dp + i0 * t, ldc: t)
                    // dV (+)= Pᵀ dO  (T, hd)
                    GEMM.sgemm(transA: true, transB: false, m: i1 - i0, n: headDim, k: t - i0,
                               a: p + i0 * t + i0, lda: t, b: dO + i0 * dim, ldb: dim, beta: beta, c: dV + i0 * ld, ldc: ld)
                }
                // dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))
                Softmax.causalBackward(p: p, dp: dp, seqLen: t, scale: scale)
                blocks(t) { i0, i1 in
                    // dQ = dS K  (T, hd)
                    GEMM.sgemm(transA: false, transB: false, m: i1 - i0, n: headDim, k: i1,
                               a: dp + i0 * t, lda: t, b: k, ldb: ld, c: dQ + i0 * ld, ldc: ld)
                    // dK (+)= dSᵀ Q  (T, hd)
                    GEMM.sgemm(transA: true, transB: false, m: i1 - i0, n: headDim, k: t - i0,
                               a: dp + i0 * t + i0, lda: t, b: q + i0 * ld, ldb: ld, beta: beta, c: dK + i0 * ld, ldc: ld)
                }
            }
        }
    }
}
