/// `EvaluationBatches` read in order as a `BatchSource`: batch 0, 1, …, count − 1, then 0 again.
///
/// A fresh source starts at batch 0, so making one per evaluation (as `Trainer`'s `validation`
/// closure does) measures every evaluation on exactly the same tokens.
public struct EvaluationBatchSource: BatchSource {
    public let batches: EvaluationBatches
    /// The batch the next `next` call fills.
    public private(set) var index = 0

    public init(_ batches: EvaluationBatches) { self.batches = batches }

    public var batchSize: Int { batches.batchSize }
    public var contextLength: Int { batches.contextLength }

    public mutating func next(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>) {
        batches.fill(batch: index, inputs: inputs, targets: targets)
        index = (index + 1) % batches.count
    }
}

extension EvaluationBatches {
    /// A source that reads these batches from the first.
    public func source() -> EvaluationBatchSource { EvaluationBatchSource(self) }
}
