import LTENumerics

/// One lane's scratch for the frozen weights, one tensor group at a time: when the model asks for a
/// frozen group (q|k|v, o, gate|up, down, lm_head), the group is read from the store (copied, or
/// dequantized) into the scratch and, while a head is folded in, that head's term and correction are
/// added, so the model multiplies by the head's effective weight Wᵢ = W + s·BᵢAᵢ − s·Bᵢ⁰Aᵢ⁰ (LoRAHead).
///
/// The backward pass asks again and gets the same bits again (same inputs, same products): a lane
/// holds the largest group once instead of a copy of every wrapped layer, and a head's arithmetic
/// does not depend on what the lane computed before.
public final class LayerFold: FrozenWeights {
    struct Group {
        let count: Int
        let sites: [LoRALayout.Site]
    }

    public let store: any FrozenWeightStore
    /// The head whose term is folded into what `weights(at:)` returns; nil gives W itself.
    public var head: LoRAHead?
    private let groups: [Int: Group]
    private let scratch: FloatBuffer

    /// `frozen` names the model's frozen tensors; `adapters` places the heads' sites (nil: no head
    /// is ever folded in, e.g. a quantized W under an adapter that computes its own term).
    public init(store: any FrozenWeightStore, model c: ModelConfig, layout: ParameterLayout, frozen: Set<String>, adapters: LoRALayout?) {
        self.store = store
        // The groups the model asks for, as (offset, count); those holding a frozen tensor are served.
        var candidates: [(Int, Int)] = layout.blocks.flatMap { b in
            [(b.wqkv, c.qkvDim * c.dim), (b.wo, c.dim * c.dim), (b.wGateUp, 2 * c.ffnDim * c.dim), (b.wDown, c.dim * c.ffnDim)]
        }
        candidates.append((layout.lmHead, c.vocabSize * c.dim))
        let frozenOffsets = Set(layout.tensors.filter { frozen.contains($0.name) }.map(\.offset))
        var groups: [Int: Group] = [:]
        for (offset, count) in candidates where frozenOffsets.contains(offset) {
            let sites = adapters?.sites.filter { $0.weight >= offset && $0.weight < offset + count } ?? []
            groups[offset] = Group(count: count, sites: sites)
        }
        self.groups = groups
        scratch = FloatBuffer(count: groups.values.map(\.count).max() ?? 0)
    }

    /// Floats of scratch this lane holds: the largest frozen group.
    public var scratchCount: Int { scratch.count }

    public func weights(at offset: Int) -> UnsafePointer<Float> {
        guard let g = groups[offset] else { preconditionFailure("LayerFold: no frozen group at offset \(offset)") }
        store.read(offset: offset, count: g.count, into: scratch.pointer)
        if let head { head.fold(g.sites, into: scratch.pointer, at: offset) }
        return UnsafePointer(scratch.pointer)
    }
}
