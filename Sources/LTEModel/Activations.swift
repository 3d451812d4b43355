import LTENumerics

/// Every intermediate the backward pass needs, preallocated for one batch shape (B, T).
/// Nothing is allocated inside the step loop: a new shape means a new `Activations`.
///
/// With `recomputesBlocks` (the LLaMA paper's activation checkpointing, `training.recompute = blocks`)
/// only each block's input (`residual`) is kept per layer; the block's own intermediates live in one
/// shared slot, and the backward pass runs each block's forward again into it before its backward
/// (all but the last block's, whose intermediates the forward pass left there). The recomputed
/// values are the same bits, so the gradients are too.
public final class Activations {
    public let batch: Int, seqLen: Int
    public var rows: Int { batch * seqLen }
    public let recomputesBlocks: Bool
    /// Where block l's intermediates live: its own slot, or the one shared slot.
    @inline(__always) func slot(_ l: Int) -> Int { recomputesBlocks ? 0 : l }

    // Per layer, the residual stream entering the block and after attention: (BT, D).
    let residual: [FloatBuffer]     // L + 1 entries: block inputs, then the final stream
    let attnResidual: [FloatBuffer]
    let attnNormed: [FloatBuffer], attnRstd: [FloatBuffer]    // (BT, D), (BT)
    let qkv: [FloatBuffer]                                     // (BT, D + 2·kvD), q and k after RoPE
    let probs: [FloatBuffer]                                   // (B, H, T, T)
    let attnOut: [FloatBuffer]                                 // (BT, D)
    let mlpNormed: [FloatBuffer], mlpRstd: [FloatBuffer]
    let gateUp: [FloatBuffer]                                  // (BT, 2F)
    let hidden: [FloatBuffer]                                  // (BT, F)
    let finalNormed: FloatBuffer, finalRstd: FloatBuffer
    public let logits: FloatBuffer                             // (BT, V); gradient after backward
    let tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>

    // Gradient scratch, shared by all layers.
    let dResidual: FloatBuffer, dNormed: FloatBuffer, dAttnOut: FloatBuffer
    let dQKV: FloatBuffer, dProbs: FloatBuffer, dGateUp: FloatBuffer, dHidden: FloatBuffer

    public init(config c: ModelConfig, batch: Int, seqLen: Int, recomputesBlocks: Bool = false) {
        precondition(seqLen <= c.contextLength, "sequence length \(seqLen) exceeds the context \(c.contextLength)")
        self.batch = batch
        self.seqLen = seqLen
        self.recomputesBlocks = recomputesBlocks
        let bt = batch * seqLen
        func per(_ n: Int) -> [FloatBuffer] { (0..<(recomputesBlocks ? 1 : c.layers)).map { _ in FloatBuffer(count: n) } }
        residual = (0...c.layers).map { _ in FloatBuffer(count: bt * c.dim) }
        attnResidual = per(bt * c.dim)
        attnNormed = per(bt * c.dim); attnRstd = per(bt)
        qkv = per(bt * c.qkvDim)
        probs = per(batch * c.heads * seqLen * seqLen)
        attnOut = per(bt * c.dim)
        mlpNormed = per(bt * c.dim); mlpRstd = per(bt)
        gateUp = per(bt * 2 * c.ffnDim)
        hidden = per(bt * c.ffnDim)
        finalNormed = FloatBuffer(count: bt * c.dim); finalRstd = FloatBuffer(count: bt)
        logits = FloatBuffer(count: bt * c.vocabSize)
        tokens = .allocate(capacity: bt); tokens.initialize(repeating: 0, count: bt)
        targets = .allocate(capacity: bt); targets.initialize(repeating: -1, count: bt)
        dResidual = FloatBuffer(count: bt * c.dim)
        dNormed = FloatBuffer(count: bt * c.dim)
        dAttnOut = FloatBuffer(count: bt * c.dim)
        dQKV = FloatBuffer(count: bt * c.qkvDim)
        dProbs = FloatBuffer(count: batch * c.heads * seqLen * seqLen)
        dGateUp = FloatBuffer(count: bt * 2 * c.ffnDim)
        dHidden = FloatBuffer(count: bt * c.ffnDim)
    }

    deinit {
        tokens.deallocate()
        targets.deallocate()
    }

    /// Floats held, for memory accounting against measured RSS.
    public var floatCount: Int {
        let lists = [residual, attnResidual, attnNormed, attnRstd, qkv, probs, attnOut, mlpNormed, mlpRstd, gateUp, hidden]
        let singles = [finalNormed, finalRstd, logits, dResidual, dNormed, dAttnOut, dQKV, dProbs, dGateUp, dHidden]
        return lists.joined().reduce(0) { $0 + $1.count } + singles.reduce(0) { $0 + $1.count } + 2 * rows
    }

    /// The same count without allocating (the memory budget of a configuration).
    public static func floatCount(config c: ModelConfig, batch: Int, seqLen: Int, recomputesBlocks: Bool = false) -> Int {
        let bt = batch * seqLen, probs = batch * c.heads * seqLen * seqLen
        let block = 4 * bt * c.dim + 2 * bt + bt * c.qkvDim + probs + 3 * bt * c.ffnDim   // a block's intermediates
        let once = 4 * bt * c.dim + bt + bt * c.vocabSize + bt * c.qkvDim + probs + 3 * bt * c.ffnDim
        let blocks = recomputesBlocks ? block : c.layers * block
        return blocks + (c.layers + 1) * bt * c.dim + once + 2 * bt
    }
}
