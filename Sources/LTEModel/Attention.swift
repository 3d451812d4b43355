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

    /// qkv (BT, ld) → probs (B, H, T, T), out (BT, D).
    func forward(qkv: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, batch: Int, seqLen t: Int) {
        perHead(batch * heads) { bh in
            let b = bh / heads, h = bh % heads
            let s = probs + bh * t * t
            // S = Q Kᵀ  (T, T)
            GEMM.sgemm(transA: false, transB: true, m: t, n: t, k: headDim,
                       a: q(qkv, b, t, h), lda: ld, b: k(qkv, b, t, h), ldb: ld, c: s, ldc: t)
            Softmax.causalForward(s, seqLen: t, scale: scale)
            // O = P V  (T, hd), written into the head's columns of out
            GEMM.sgemm(transA: false, transB: false, m: t, n: headDim, k: t,
                       a: s, lda: t, b: v(qkv, b, t, h), ldb: ld, c: out + b * t * dim + h * headDim, ldc: dim)
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
                let first = h == g * group   // first head of the group overwrites dK, dV
                // dP = dO Vᵀ  (T, T)
                GEMM.sgemm(transA: false, transB: true, m: t, n: t, k: headDim,
                           a: dO, lda: dim, b: v(qkv, b, t, h), ldb: ld, c: dp, ldc: t)
                // dV (+)= Pᵀ dO  (T, hd)
                GEMM.sgemm(transA: true, transB: false, m: t, n: headDim, k: t,
                           a: p, lda: t, b: dO, ldb: dim, beta: first ? 0 : 1, c: v(dQKV, b, t, h), ldc: ld)
                // dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))
                Softmax.causalBackward(p: p, dp: dp, seqLen: t, scale: scale)
                // dQ = dS K  (T, hd)
                GEMM.sgemm(transA: false, transB: false, m: t, n: headDim, k: t,
                           a: dp, lda: t, b: k(qkv, b, t, h), ldb: ld, c: q(dQKV, b, t, h), ldc: ld)
                // dK (+)= dSᵀ Q  (T, hd)
                GEMM.sgemm(transA: true, transB: false, m: t, n: headDim, k: t,
                           a: dp, lda: t, b: q(qkv, b, t, h), ldb: ld, beta: first ? 0 : 1, c: k(dQKV, b, t, h), ldc: ld)
            }
        }
    }
}
