import LTEModel
import LTENumerics

/// The parameter server's state, and the one place the merge of a round is carried out: the main
/// weights (W and the averaged replicated tensors) and every head's factors as of its last merge
/// (whose product is that head's correction Vᵢ). The in-process trainer, the server, each worker and
/// replay all merge through this type, so they all hold the same bits.
public final class MainWeights {
    public let model: Transformer
    public let lora: LoRAConfig?
    public let layout: LoRALayout?
    public let totalHeads: Int
    /// Offsets and sizes of the tensors every replica trains and each round averages.
    public let replicatedSpans: [(offset: Int, count: Int)]
    public var replicatedCount: Int { replicatedSpans.reduce(0) { $0 + $1.count } }
    /// Factors of head i at its last merge; nil before its first (reset-B: always nil, V = 0).
    public private(set) var lastMerged: [FloatBuffer?]
    public private(set) var round = 0

    public init(model config: ModelConfig, lora: LoRAConfig?, totalHeads: Int, seed: UInt64) throws {
        let model = try Transformer(config: config, trainable: { _ in false })
        model.initialize(seed: seed)
        self.model = model
        self.lora = lora
        self.totalHeads = totalHeads
        let layout = lora.map { LoRALayout(model: config, layout: model.layout, rank: $0.rank, wrapLMHead: $0.wrapLMHead) }
        self.layout = layout
        let frozen = layout?.wrappedTensorNames ?? []
        replicatedSpans = model.layout.tensors.filter { !frozen.contains($0.name) }.map { ($0.offset, $0.count) }
        lastMerged = Array(repeating: nil, count: totalHeads)
    }

    /// One head's part in a round: its current factors (adapter modes) and its replica's parameters
    /// (only the replicated spans are read).
    public struct Push {
        public let head: Int
        public let factors: UnsafePointer<Float>?
        public let params: UnsafePointer<Float>
        public init(head: Int, factors: UnsafePointer<Float>?, params: UnsafePointer<Float>) {
            self.head = head; self.factors = factors; self.params = params
        }
    }

    /// Closes a round over the heads present, in ascending head order whatever order they came in:
    /// W ← W + (s/N) Σ (BᵢAᵢ − Vᵢ) (or the reset-B rule), replicated tensors ← their mean, Vᵢ ← BᵢAᵢ.
    public func merge(_ pushes: [Push]) {
        let pushes = pushes.sorted { $0.head < $1.head }
        guard !pushes.isEmpty else { return }
        let w = model.params.pointer
        if let lora, let layout {
            let contributions = pushes.map { p in
                LTEMerge.Contribution(factors: p.factors!, previous: lora.merge == .resetless ? lastMerged[p.head].map { UnsafePointer($0.pointer) } : nil)
            }
            LTEMerge.apply(to: w, layout: layout, heads: contributions, scale: lora.scale, totalHeads: totalHeads)
            if lora.merge == .resetless {
                for p in pushes {
                    let b = lastMerged[p.head] ?? FloatBuffer(count: layout.count)
                    b.pointer.update(from: p.factors!, count: layout.count)
                    lastMerged[p.head] = b
                }
            }
        }
        LTEMerge.average(spans: replicatedSpans, replicas: pushes.map(\.params), into: w)
        round += 1
    }

    /// Bytes that cross the network for a round with `present` heads, one head per worker: up, each
    /// head's factors and replicated tensors; down, to each, every merged head's factors and the average.
    public func roundBytes(present: Int) -> Int {
        let f = layout?.count ?? 0
        let up = present * (f + replicatedCount)
        let down = present * (present * f + replicatedCount)
        return (up + down) * MemoryLayout<Float>.size
    }
}
