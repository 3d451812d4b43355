/// Where each named tensor sits in the model's one contiguous parameter buffer.
///
/// Order is Hugging Face `state_dict` order (embed, then per layer q, k, v, o, gate, up, down,
/// input norm, post-attention norm; final norm; lm_head). It is also the order of the weights hash,
/// and it puts q|k|v and gate|up side by side, so each pair is one fused product.
public struct ParameterLayout: Sendable {
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    /// Offsets of one decoder block's tensors.
    public struct Block: Sendable {
        public let wqkv: Int      // [q|k|v] stacked: (dim + 2·kvDim, dim)
        public let wo: Int        // (dim, dim)
        public let wGateUp: Int   // [gate|up] stacked: (2·ffn, dim)
        public let wDown: Int     // (dim, ffn)
        public let attnNorm: Int  // (dim)
        public let mlpNorm: Int   // (dim)
    }

    public let tensors: [Tensor]
    public let blocks: [Block]
    public let embed: Int
    public let finalNorm: Int
    public let lmHead: Int
    public let count: Int

    public init(_ c: ModelConfig) {
        var tensors: [Tensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let t = Tensor(name: name, shape: shape, offset: offset)
            tensors.append(t)
            offset += t.count
            return t.offset
        }
        embed = add("model.embed_tokens.weight", [c.vocabSize, c.dim])
        var blocks: [Block] = []
        for l in 0..<c.layers {
            let p = "model.layers.\(l)."
            let q = add(p + "self_attn.q_proj.weight", [c.dim, c.dim])
            _ = add(p + "self_attn.k_proj.weight", [c.kvDim, c.dim])
            _ = add(p + "self_attn.v_proj.weight", [c.kvDim, c.dim])
            let o = add(p + "self_attn.o_proj.weight", [c.dim, c.dim])
            let gate = add(p + "mlp.gate_proj.weight", [c.ffnDim, c.dim])
            _ = add(p + "mlp.up_proj.weight", [c.ffnDim, c.dim])
            let down = add(p + "mlp.down_proj.weight", [c.dim, c.ffnDim])
            let n1 = add(p + "input_layernorm.weight", [c.dim])
            let n2 = add(p + "post_attention_layernorm.weight", [c.dim])
            blocks.append(Block(wqkv: q, wo: o, wGateUp: gate, wDown: down, attnNorm: n1, mlpNorm: n2))
        }
        finalNorm = add("model.norm.weight", [c.dim])
        lmHead = add("lm_head.weight", [c.vocabSize, c.dim])
        self.tensors = tensors
        self.blocks = blocks
        self.count = offset
    }

    public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }

    private init(tensors: [Tensor], blocks: [Block], embed: Int, finalNorm: Int, lmHead: Int, count: Int) {
        self.tensors = tensors; self.blocks = blocks; self.embed = embed
        self.finalNorm = finalNorm; self.lmHead = lmHead; self.count = count
    }

    /// The same tensors packed without the ones `keep` rejects, which get offset −1: the layout of a
    /// gradient buffer that has no room for frozen weights. Fused pairs (q|k|v, gate|up) must be kept
    /// or dropped together, so they stay adjacent.
    public func compacted(keeping keep: (Tensor) -> Bool) -> ParameterLayout {
        var map: [Int: Int] = [:]
        var packed: [Tensor] = []
        var offset = 0
        for t in tensors where keep(t) {
            map[t.offset] = offset
            packed.append(Tensor(name: t.name, shape: t.shape, offset: offset))
            offset += t.count
        }
        func m(_ o: Int) -> Int { map[o] ?? -1 }
        let blocks = self.blocks.map {
            Block(wqkv: m($0.wqkv), wo: m($0.wo), wGateUp: m($0.wGateUp), wDown: m($0.wDown), attnNorm: m($0.attnNorm), mlpNorm: m($0.mlpNorm))
        }
        return ParameterLayout(tensors: packed, blocks: blocks, embed: m(embed), finalNorm: m(finalNorm), lmHead: m(lmHead), count: offset)
    }

    /// Parameters that take part in matrix products (every linear layer, lm_head included): the P
    /// of the 6·P FLOPs-per-token estimate. Embeddings are a lookup and norms are elementwise.
    public var matmulParameterCount: Int {
        tensors.filter { $0.shape.count == 2 && $0.name != "model.embed_tokens.weight" }.reduce(0) { $0 + $1.count }
    }
}
