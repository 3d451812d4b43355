import LTENumerics

/// The LLaMA-style decoder (DESIGN.md §2): token embedding, L blocks of
/// [RMSNorm → causal attention with RoPE → residual, RMSNorm → SwiGLU MLP → residual],
/// final RMSNorm, untied lm_head. No biases.
///
/// All parameters live in one contiguous buffer (`params`, laid out by `layout`), and their
/// gradients in another (`grads`, laid out by `gradLayout`), which holds only the trainable tensors:
/// a frozen weight has no gradient slot, and no dW product is ever computed for it.
/// Forward and backward of each piece sit side by side below, in
/// llm.c's manner; shapes are in comments, B = batch, T = sequence, D = model width.
public final class Transformer {
    public let config: ModelConfig
    public let layout: ParameterLayout
    public let params: FloatBuffer
    public let grads: FloatBuffer
    public let gradLayout: ParameterLayout
    let rope: RoPE
    let attention: Attention
    /// Low-rank terms on the linear layers (LTE); nil trains the dense model.
    public var adapters: (any LinearAdapters)?
    /// Where the frozen tensors are read, when not from `params`: another model's parameter buffer
    /// of the same layout, or a lane's `LayerFold`. The heads of a worker read W from the main
    /// weights there, so the process holds W once; their own `params` then hold only what they train
    /// (the rest is never touched, so never resident: FloatBuffer's large buffers are mapped lazily).
    public let frozenSource: (any FrozenWeights)?

    /// `trainable` picks the tensors that get gradients (all, by default).
    public init(config: ModelConfig, trainable: (ParameterLayout.Tensor) -> Bool = { _ in true }, frozenSource: (any FrozenWeights)? = nil) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config)
        params = FloatBuffer(count: layout.count)
        if let b = frozenSource as? FloatBuffer { precondition(b.count == layout.count, "frozen weights of another layout") }
        self.frozenSource = frozenSource
        gradLayout = layout.compacted(keeping: trainable)
        grads = FloatBuffer(count: gradLayout.count)
        rope = RoPE(headDim: config.headDim, maxPositions: config.contextLength, theta: config.ropeTheta, scaling: config.ropeScaling)
        attention = Attention(config)
    }

    /// GPT-2-style initialisation: N(0, 0.02) for embeddings and projections, the residual-output
    /// projections (o, down) shrunk by 1/√(2L), norm gains 1.
    public func initialize(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let residualStd = 0.02 / Float(2 * config.layers).squareRoot()
        for t in layout.tensors {
            let p = params.pointer + t.offset
            if t.shape.count == 1 {
                p.update(repeating: 1, count: t.count)
            } else {
                let residualOut = t.name.hasSuffix("o_proj.weight") || t.name.hasSuffix("down_proj.weight")
                rng.fillNormal(p, count: t.count, std: residualOut ? residualStd : 0.02)
            }
        }
    }

    public func zeroGrad() { grads.zero() }

    private func wrapped(_ p: Projection) -> Bool { adapters?.wraps(p) ?? false }

    /// A tensor's values by its offset and its gradient offset (−1 when frozen). A frozen one may
    /// be a lane's scratch: use it at once, before asking for another.
    @inline(__always) private func w(_ offset: Int, _ grad: Int) -> UnsafePointer<Float> {
        if grad < 0, let frozenSource { return frozenSource.weights(at: offset) }
        return UnsafePointer(params.pointer + offset)
    }

    // MARK: - Forward

    /// Runs the model on `a.tokens` (B·T ids). With targets, returns the mean cross-entropy; with
    /// `forTraining`, the logits buffer is left holding ∂loss/∂logits for `backward`. Without targets
    /// the logits are left as they are (for sampling) and the result is 0.
    @discardableResult
    public func forward(_ a: Activations, tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>?, forTraining: Bool = true) -> Float {
        let c = config, bt = a.rows, d = c.dim, gl = gradLayout
        a.tokens.update(from: tokens, count: bt)
        if let targets { a.targets.update(from: targets, count: bt) } else { a.targets.update(repeating: -1, count: bt) }

        // Embedding: residual₀ (BT, D) = E[tokens]
        let x0 = a.residual[0].pointer
        for r in 0..<bt {
            let id = Int(tokens[r])
            precondition(id >= 0 && id < c.vocabSize, "token id \(id) outside the vocabulary of \(c.vocabSize)")
            (x0 + r * d).update(from: w(layout.embed, gl.embed) + id * d, count: d)
        }

        for l in 0..<c.layers { blockForward(l, a) }

        // Head: logits (BT, V) = RMSNorm(x_L) W_lmᵀ
        let xl = a.residual[c.layers].pointer
        RMSNorm.forward(x: xl, gain: w(layout.finalNorm, gl.finalNorm), y: a.finalNormed.pointer, rstd: a.finalRstd.pointer, rows: bt, dim: d, eps: c.normEps)
        linear(.lmHead, layer: 0, a.finalNormed.pointer, w(layout.lmHead, gl.lmHead), a.logits.pointer, rows: bt, inFeatures: d, outFeatures: c.vocabSize)
        guard targets != nil else { return 0 }
        return forTraining
            ? CrossEntropy.forwardBackward(logits: a.logits.pointer, targets: a.targets, rows: bt, vocab: c.vocabSize)
            : CrossEntropy.loss(logits: a.logits.pointer, targets: a.targets, rows: bt, vocab: c.vocabSize)
    }

    /// Block l: residual[l] → residual[l + 1], its intermediates into the block's slot of `a`.
    /// `recomputing` (for the backward pass, `training.recompute = blocks`) stops before the down
    /// projection: its output, the block's, is kept (residual[l + 1]), and its backward needs only its
    /// input h and the adapters' u, which each site keeps from the forward pass. A fifth of the
    /// block's products (and the fold of Wdown) is not done twice.
    private func blockForward(_ l: Int, _ a: Activations, recomputing: Bool = false) {
        let c = config, bt = a.rows, d = c.dim, ld = c.qkvDim, f = c.ffnDim
        let blk = layout.blocks[l], gblk = gradLayout.blocks[l], i = a.slot(l)
        let x = a.residual[l].pointer, xn = a.attnNormed[i].pointer, qkv = a.qkv[i].pointer
        // Attention: xn = RMSNorm(x); qkv = xn [Wq|Wk|Wv]ᵀ (BT, D+2kvD); RoPE on q and k
        RMSNorm.forward(x: x, gain: w(blk.attnNorm, gblk.attnNorm), y: xn, rstd: a.attnRstd[i].pointer, rows: bt, dim: d, eps: c.normEps)
        GEMM.linear(xn, w(blk.wqkv, gblk.wqkv), qkv, rows: bt, inFeatures: d, outFeatures: ld)
        if wrapped(.q) {
            adapters!.forward(LinearSite(layer: l, projection: .q), x: xn, ldx: d, y: qkv, ldy: ld, rows: bt)
            adapters!.forward(LinearSite(layer: l, projection: .k), x: xn, ldx: d, y: qkv + d, ldy: ld, rows: bt)
            adapters!.forward(LinearSite(layer: l, projection: .v), x: xn, ldx: d, y: qkv + d + c.kvDim, ldy: ld, rows: bt)
        }
        rope.rotate(qkv, rows: bt, seqLen: a.seqLen, heads: c.heads, stride: ld)
        rope.rotate(qkv + d, rows: bt, seqLen: a.seqLen, heads: c.kvHeads, stride: ld)
        attention.forward(qkv: qkv, probs: a.probs[i].pointer, out: a.attnOut[i].pointer, batch: a.batch, seqLen: a.seqLen)
        // x' = x + att Woᵀ
        let xa = a.attnResidual[i].pointer
        linear(.o, layer: l, a.attnOut[i].pointer, w(blk.wo, gblk.wo), xa, rows: bt, inFeatures: d, outFeatures: d)
        Vec.add(x, into: xa, count: bt * d)

        // MLP: hn = RMSNorm(x'); [a|u] = hn [Wg|Wu]ᵀ (BT, 2F); h = silu(a)⊙u; x'' = x' + h Wdownᵀ
        let hn = a.mlpNormed[i].pointer, gu = a.gateUp[i].pointer, h = a.hidden[i].pointer
        RMSNorm.forward(x: xa, gain: w(blk.mlpNorm, gblk.mlpNorm), y: hn, rstd: a.mlpRstd[i].pointer, rows: bt, dim: d, eps: c.normEps)
        GEMM.linear(hn, w(blk.wGateUp, gblk.wGateUp), gu, rows: bt, inFeatures: d, outFeatures: 2 * f)
        if wrapped(.gate) {
            adapters!.forward(LinearSite(layer: l, projection: .gate), x: hn, ldx: d, y: gu, ldy: 2 * f, rows: bt)
            adapters!.forward(LinearSite(layer: l, projection: .up), x: hn, ldx: d, y: gu + f, ldy: 2 * f, rows: bt)
        }
        SwiGLU.forward(gateUp: gu, h: h, rows: bt, hidden: f)
        if recomputing { return }
        let xo = a.residual[l + 1].pointer
        linear(.down, layer: l, h, w(blk.wDown, gblk.wDown), xo, rows: bt, inFeatures: f, outFeatures: d)
        Vec.add(xa, into: xo, count: bt * d)
    }

    /// y = x Wᵀ (+ the adapter's term when it wraps this projection).
    @inline(__always)
    private func linear(_ p: Projection, layer: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        rows: Int, inFeatures: Int, outFeatures: Int) {
        GEMM.linear(x, w, y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        if wrapped(p) {
            adapters!.forward(LinearSite(layer: layer, projection: p), x: x, ldx: inFeatures, y: y, ldy: outFeatures, rows: rows)
        }
    }

    // MARK: - Backward

    /// Accumulates ∂loss/∂θ into `grads` (call `zeroGrad` first) and into the adapters' gradients,
    /// from the state the last `forward(…, forTraining: true)` left in `a`.
    public func backward(_ a: Activations) {
        let c = config, bt = a.rows, d = c.dim, ld = c.qkvDim, f = c.ffnDim
        let g = grads.pointer, gl = gradLayout
        let dx = a.dResidual.pointer, dn = a.dNormed.pointer

        // Head: dlogits → d(final normed) → d x_L
        dn.update(repeating: 0, count: bt * d)
        linearBackward(.lmHead, layer: 0, x: a.finalNormed.pointer, dy: a.logits.pointer, w: w(layout.lmHead, gl.lmHead), dw: gl.lmHead,
                       dx: dn, rows: bt, inFeatures: d, outFeatures: c.vocabSize)
        dx.update(repeating: 0, count: bt * d)
        RMSNorm.backward(dy: dn, x: a.residual[c.layers].pointer, gain: w(layout.finalNorm, gl.finalNorm), rstd: a.finalRstd.pointer,
                         dx: dx, dgain: g + gl.finalNorm, rows: bt, dim: d)

        for l in stride(from: c.layers - 1, through: 0, by: -1) {
            let blk = layout.blocks[l], gblk = gl.blocks[l], i = a.slot(l)
            // Recomputing: the block's intermediates again, from its input (the same bits as the forward's).
            // The last block's are still in the shared slot from the forward pass: nothing to redo.
            if a.recomputesBlocks && l < c.layers - 1 { blockForward(l, a, recomputing: true) }
            // dx holds ∂/∂x''. MLP branch: x'' = x' + down(swiglu(gateUp(norm(x'))))
            let dh = a.dHidden.pointer, dgu = a.dGateUp.pointer
            dh.update(repeating: 0, count: bt * f)
            linearBackward(.down, layer: l, x: a.hidden[i].pointer, dy: dx, w: w(blk.wDown, gblk.wDown), dw: gblk.wDown,
                           dx: dh, rows: bt, inFeatures: f, outFeatures: d)
            SwiGLU.backward(dh: dh, gateUp: a.gateUp[i].pointer, dGateUp: dgu, rows: bt, hidden: f)
            let hn = a.mlpNormed[i].pointer
            GEMM.linearInputGrad(dgu, w(blk.wGateUp, gblk.wGateUp), dn, rows: bt, inFeatures: d, outFeatures: 2 * f)
            if gblk.wGateUp >= 0 {
                GEMM.linearWeightGrad(dgu, hn, g + gblk.wGateUp, rows: bt, inFeatures: d, outFeatures: 2 * f)
            }
            if wrapped(.gate) {
                adapters!.backward(LinearSite(layer: l, projection: .gate), x: hn, ldx: d, dy: dgu, lddy: 2 * f, dx: dn, lddx: d, rows: bt)
                adapters!.backward(LinearSite(layer: l, projection: .up), x: hn, ldx: d, dy: dgu + f, lddy: 2 * f, dx: dn, lddx: d, rows: bt)
            }
            // dx += RMSNorm'(dn): now ∂/∂x'
            RMSNorm.backward(dy: dn, x: a.attnResidual[i].pointer, gain: w(blk.mlpNorm, gblk.mlpNorm), rstd: a.mlpRstd[i].pointer,
                             dx: dx, dgain: g + gblk.mlpNorm, rows: bt, dim: d)

            // Attention branch: x' = x + o(attn(rope(qkv(norm(x)))))
            let dAtt = a.dAttnOut.pointer, dqkv = a.dQKV.pointer, xn = a.attnNormed[i].pointer
            dAtt.update(repeating: 0, count: bt * d)
            linearBackward(.o, layer: l, x: a.attnOut[i].pointer, dy: dx, w: w(blk.wo, gblk.wo), dw: gblk.wo,
                           dx: dAtt, rows: bt, inFeatures: d, outFeatures: d)
            attention.backward(dOut: dAtt, qkv: a.qkv[i].pointer, probs: a.probs[i].pointer, dProbs: a.dProbs.pointer,
                               dQKV: dqkv, batch: a.batch, seqLen: a.seqLen)
            rope.rotate(dqkv, rows: bt, seqLen: a.seqLen, heads: c.heads, stride: ld, inverse: true)
            rope.rotate(dqkv + d, rows: bt, seqLen: a.seqLen, heads: c.kvHeads, stride: ld, inverse: true)
            GEMM.linearInputGrad(dqkv, w(blk.wqkv, gblk.wqkv), dn, rows: bt, inFeatures: d, outFeatures: ld)
            if gblk.wqkv >= 0 {
                GEMM.linearWeightGrad(dqkv, xn, g + gblk.wqkv, rows: bt, inFeatures: d, outFeatures: ld)
            }
            if wrapped(.q) {
                adapters!.backward(LinearSite(layer: l, projection: .q), x: xn, ldx: d, dy: dqkv, lddy: ld, dx: dn, lddx: d, rows: bt)
                adapters!.backward(LinearSite(layer: l, projection: .k), x: xn, ldx: d, dy: dqkv + d, lddy: ld, dx: dn, lddx: d, rows: bt)
                adapters!.backward(LinearSite(layer: l, projection: .v), x: xn, ldx: d, dy: dqkv + d + c.kvDim, lddy: ld, dx: dn, lddx: d, rows: bt)
            }
            // dx += RMSNorm'(dn): now ∂/∂x, the block's input
            RMSNorm.backward(dy: dn, x: a.residual[l].pointer, gain: w(blk.attnNorm, gblk.attnNorm), rstd: a.attnRstd[i].pointer,
                             dx: dx, dgain: g + gblk.attnNorm, rows: bt, dim: d)
        }

        // Embedding: scatter-add the rows back to their tokens.
        if gl.embed >= 0 { for r in 0..<bt {
            Vec.add(dx + r * d, into: g + gl.embed + Int(a.tokens[r]) * d, count: d)
        } }
    }

    /// dx (rows, in) += dy W; dW += dyᵀ x when W has a gradient slot (`dw` ≥ 0); plus the adapter's terms.
    @inline(__always)
    private func linearBackward(_ p: Projection, layer: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                w: UnsafePointer<Float>, dw: Int, dx: UnsafeMutablePointer<Float>,
                                rows: Int, inFeatures: Int, outFeatures: Int) {
        GEMM.linearInputGrad(dy, w, dx, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, beta: 1)
        if dw >= 0 {
            GEMM.linearWeightGrad(dy, x, grads.pointer + dw, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        }
        if wrapped(p) {
            adapters!.backward(LinearSite(layer: layer, projection: p), x: x, ldx: inFeatures, dy: dy, lddy: outFeatures,
                               dx: dx, lddx: inFeatures, rows: rows)
        }
    }
}
