import LTEBase

/// A fixed set of validation batches, chosen once from a seed.
///
/// Losses measured at different steps (or by different workers, or on a replayed checkpoint) are only
/// comparable if they are measured on the same tokens, so the window offsets are drawn up front and
/// kept; `fill(batch:…)` then reads batch i the same way every time. The offsets come from a
/// `BatchSampler` on a stream of its own, so they never coincide with a training sampler's by accident.
public struct EvaluationBatches {
    /// The sampler stream evaluation offsets are drawn from.
    public static let stream: UInt64 = 0xE7A1

    public let batchSize: Int
    public let contextLength: Int
    /// Window starts, `count × batchSize` of them, batch-major.
    public let offsets: [Int]
    private let sampler: BatchSampler

    /// Number of batches.
    public var count: Int { offsets.count / batchSize }

    public init(tokens: TokenShard, range: Range<Int>? = nil, batches: Int, batchSize: Int, contextLength: Int, seed: UInt64) throws {
        guard batches >= 1 else { throw LTEError("number of evaluation batches (\(batches)) must be at least 1") }
        var sampler = try BatchSampler(tokens: tokens, range: range, batchSize: batchSize, contextLength: contextLength,
                                       seed: seed, stream: Self.stream)
        offsets = (0..<batches * batchSize).map { _ in sampler.nextOffset() }
        self.sampler = sampler
        self.batchSize = batchSize
        self.contextLength = contextLength
    }

    /// Fills inputs and targets, each (B, T), with batch `index` (0 ..< count).
    public func fill(batch index: Int, inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>) {
        precondition(index >= 0 && index < count, "EvaluationBatches: batch \(index) not in 0..<\(count)")
        for b in 0..<batchSize {
            sampler.fillRow(offset: offsets[index * batchSize + b],
                            inputs: inputs + b * contextLength, targets: targets + b * contextLength)
        }
    }

    /// Calls `body(i)` after filling the buffers with batch i, for every batch in order.
    public func forEach(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>, _ body: (Int) throws -> Void) rethrows {
        for i in 0..<count {
            fill(batch: i, inputs: inputs, targets: targets)
            try body(i)
        }
    }
}
