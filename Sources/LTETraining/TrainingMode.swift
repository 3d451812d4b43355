/// What is trained, and how replicas meet: the modes `lte train --mode` offers, on one code path
/// so their comparison is honest (DESIGN.md §2, "Baselines").
public enum TrainingMode: String, CaseIterable, Sendable {
    /// One dense model, one optimizer: the reference.
    case full
    /// N heads of rank r on frozen W, each on its own shard with its own AdamW, merged every T steps.
    case lte
    /// One head of rank r on frozen W, never merged.
    case lora
    /// One head merged into W every T steps (ReLoRA-like).
    case loraMerge = "lora-merge"
    /// N dense replicas on their own shards, averaged every T steps (FedAvg / DiLoCo with outer lr 1).
    case fedavg

    public var usesAdapters: Bool { self == .lte || self == .lora || self == .loraMerge }
    /// Replicas trained in one process: the configured heads for lte and fedavg, else one.
    public func replicaCount(heads: Int) -> Int { self == .lte || self == .fedavg ? heads : 1 }
    /// Steps between merges / averages; nil for never.
    public func syncInterval(mergeEvery: Int) -> Int? {
        switch self {
        case .full, .lora: nil
        case .lte, .loraMerge, .fedavg: mergeEvery
        }
    }
}
