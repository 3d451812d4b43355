import LTEBase
import LTENumerics

/// Draws training batches the way nanoGPT's `get_batch` does: B windows of T + 1 consecutive tokens
/// at uniformly random offsets; inputs are the first T of each window, targets the last T, so
/// targets[b, t] is the token that follows inputs[b, t].
///
/// Deterministic: the offsets depend only on (seed, stream), so a run can be replayed exactly and two
/// heads with different streams see different orders. Each LTE head samples only from its own
/// contiguous `range` of the stream (see `shardRange`), which keeps the heads' data disjoint.
public struct BatchSampler: BatchSource {
    public let tokens: TokenShard
    /// The slice of the shard this sampler reads; windows never cross its ends.
    public let range: Range<Int>
    public let batchSize: Int
    public let contextLength: Int
    private var generator: SeededGenerator

    public init(tokens: TokenShard, range: Range<Int>? = nil, batchSize: Int, contextLength: Int, seed: UInt64, stream: UInt64 = 0) throws {
        let range = range ?? 0..<tokens.count
        guard batchSize >= 1, contextLength >= 1 else {
            throw LTEError("batch size (\(batchSize)) and context length (\(contextLength)) must be at least 1")
        }
        guard range.lowerBound >= 0, range.upperBound <= tokens.count else {
            throw LTEError("token range \(range) lies outside \(tokens.url.path), which holds \(tokens.count) tokens")
        }
        guard range.count >= contextLength + 1 else {
            throw LTEError("token range \(range) of \(tokens.url.path) holds \(range.count) tokens, fewer than context length + 1 = \(contextLength + 1) — use fewer heads, a shorter context or more data")
        }
        self.tokens = tokens
        self.range = range
        self.batchSize = batchSize
        self.contextLength = contextLength
        self.generator = SeededGenerator(seed: seed, stream: stream)
    }

    /// The start of the next window, uniform in [lo, hi − T − 1].
    @inline(__always)
    public mutating func nextOffset() -> Int {
        range.lowerBound + generator.nextInt(below: range.count - contextLength)
    }

    /// Advances past `batches` batches without reading them, leaving the sampler exactly where it would
    /// be after that many `next` calls: how a resumed run sees the batches it would have seen.
    public mutating func skip(batches: Int) {
        precondition(batches >= 0, "BatchSampler.skip: negative batch count \(batches)")
        for _ in 0..<(batches * batchSize) { _ = nextOffset() }
    }

    /// Fills inputs and targets, each (B, T) row-major, with the next batch. No allocation.
    public mutating func next(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>) {
        for b in 0..<batchSize {
            fillRow(offset: nextOffset(), inputs: inputs + b * contextLength, targets: targets + b * contextLength)
        }
    }

    /// One row: inputs = tokens[offset ..< offset+T], targets = tokens[offset+1 ..< offset+T+1].
    @inline(__always)
    func fillRow(offset: Int, inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>) {
        tokens.copyTokens(from: offset, count: contextLength, into: inputs)
        // The targets overlap the inputs in all but one token: copy that one, shift the rest.
        targets.update(from: inputs + 1, count: contextLength - 1)
        targets[contextLength - 1] = tokens.token(at: offset + contextLength)
    }

    /// Head `head`'s slice of a stream of `tokenCount` tokens split among `heads` heads: contiguous,
    /// disjoint, together covering the stream, sizes differing by at most one token.
    public static func shardRange(head: Int, of heads: Int, tokenCount: Int) -> Range<Int> {
        precondition(heads >= 1 && head >= 0 && head < heads, "shardRange: head \(head) not in 0..<\(heads)")
        precondition(tokenCount >= 0, "shardRange: negative token count")
        return (tokenCount * head / heads) ..< (tokenCount * (head + 1) / heads)
    }
}

extension BatchSampler {
    /// The training batches of replica `head` of `heads`: a disjoint contiguous slice of the stream
    /// fixed by head index, and a data order of its own. One head (and full-rank training) gets the
    /// whole stream. The in-process trainer and a worker process call this alike, so the same head
    /// sees the same batches wherever it runs.
    public static func forHead(_ head: Int, of heads: Int, train: TokenShard, batchSize: Int, contextLength: Int, seed: UInt64) throws -> BatchSampler {
        let range = heads == 1 ? nil : shardRange(head: head, of: heads, tokenCount: train.count)
        return try BatchSampler(tokens: train, range: range, batchSize: batchSize, contextLength: contextLength,
                                seed: seed, stream: 1 + UInt64(head))
    }
}
