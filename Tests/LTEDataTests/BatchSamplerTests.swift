import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEData

final class BatchSamplerTests: XCTestCase {
    /// A shard whose token i is i, so a window's contents reveal its offset.
    private func countingShard(_ n: Int) throws -> TokenShard {
        let url = try makeTemporaryDirectory().appendingPathComponent("count.bin")
        try TokenShard.write((0..<n).map { Int32($0) }, vocabSize: n, to: url)
        return try TokenShard(contentsOf: url, vocabSize: n)
    }

    private func batch(_ sampler: inout BatchSampler) -> (inputs: [Int32], targets: [Int32]) {
        let n = sampler.batchSize * sampler.contextLength
        var inputs = [Int32](repeating: -1, count: n), targets = [Int32](repeating: -1, count: n)
        inputs.withUnsafeMutableBufferPointer { i in
            targets.withUnsafeMutableBufferPointer { t in sampler.next(inputs: i.baseAddress!, targets: t.baseAddress!) }
        }
        return (inputs, targets)
    }

    func testTargetsAreInputsShiftedByOneWithinTheRange() throws {
        let shard = try countingShard(5000)
        let range = 1000..<2000
        var sampler = try BatchSampler(tokens: shard, range: range, batchSize: 8, contextLength: 16, seed: 7, stream: 3)
        for _ in 0..<50 {
            let (inputs, targets) = batch(&sampler)
            for b in 0..<8 {
                let row = Array(inputs[b * 16..<(b + 1) * 16]), next = Array(targets[b * 16..<(b + 1) * 16])
                XCTAssertEqual(row, (0..<16).map { row[0] + Int32($0) }, "a row is a contiguous window")
                XCTAssertEqual(next, row.map { $0 + 1 }, "targets are the following tokens")
                XCTAssertGreaterThanOrEqual(Int(row[0]), range.lowerBound)
                XCTAssertLessThan(Int(next[15]), range.upperBound)
            }
        }
    }

    func testOffsetsCoverBothEndsOfTheRangeAndNoMore() throws {
        let shard = try countingShard(100)
        var sampler = try BatchSampler(tokens: shard, range: 10..<20, batchSize: 1, contextLength: 6, seed: 1)
        var seen = Set<Int>()
        for _ in 0..<500 { seen.insert(sampler.nextOffset()) }
        XCTAssertEqual(seen, Set(10...13), "offsets uniform in [lo, hi - T - 1]")
    }

    func testSameSeedAndStreamGiveTheSameBatches() throws {
        let shard = try countingShard(10_000)
        var a = try BatchSampler(tokens: shard, batchSize: 4, contextLength: 32, seed: 42, stream: 5)
        var b = try BatchSampler(tokens: shard, batchSize: 4, contextLength: 32, seed: 42, stream: 5)
        var c = try BatchSampler(tokens: shard, batchSize: 4, contextLength: 32, seed: 42, stream: 6)
        var d = try BatchSampler(tokens: shard, batchSize: 4, contextLength: 32, seed: 43, stream: 5)
        var differentStream = false, differentSeed = false
        for _ in 0..<20 {
            let x = batch(&a)
            XCTAssertTrue(x == batch(&b))
            differentStream = differentStream || !(x == batch(&c))
            differentSeed = differentSeed || !(x == batch(&d))
        }
        XCTAssertTrue(differentStream)
        XCTAssertTrue(differentSeed)
    }

    func testRejectsRangesTooShortOrOutsideTheShard() throws {
        let shard = try countingShard(100)
        XCTAssertNoThrow(try BatchSampler(tokens: shard, range: 0..<9, batchSize: 1, contextLength: 8, seed: 0))
        assertLTEError(try BatchSampler(tokens: shard, range: 0..<8, batchSize: 1, contextLength: 8, seed: 0),
                       contains: "holds 8 tokens", "context length + 1 = 9")
        assertLTEError(try BatchSampler(tokens: shard, range: 50..<101, batchSize: 1, contextLength: 8, seed: 0), contains: "outside")
        assertLTEError(try BatchSampler(tokens: shard, batchSize: 0, contextLength: 8, seed: 0), contains: "batch size")
    }

    func testShardRangesAreDisjointContiguousAndCoverTheStream() {
        for (heads, count) in [(1, 10), (3, 10), (4, 1_003_854), (32, 1_003_854), (7, 5), (5, 0)] {
            let ranges = (0..<heads).map { BatchSampler.shardRange(head: $0, of: heads, tokenCount: count) }
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, count)
            for (left, right) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(left.upperBound, right.lowerBound) }
            let sizes = ranges.map(\.count)
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
        }
    }

    func testEvaluationBatchesAreFixedBySeed() throws {
        let shard = try countingShard(3000)
        let evalA = try EvaluationBatches(tokens: shard, batches: 5, batchSize: 3, contextLength: 8, seed: 9)
        let evalB = try EvaluationBatches(tokens: shard, batches: 5, batchSize: 3, contextLength: 8, seed: 9)
        let evalC = try EvaluationBatches(tokens: shard, batches: 5, batchSize: 3, contextLength: 8, seed: 10)
        XCTAssertEqual(evalA.count, 5)
        XCTAssertEqual(evalA.offsets, evalB.offsets)
        XCTAssertNotEqual(evalA.offsets, evalC.offsets)

        func collect(_ e: EvaluationBatches) -> [[Int32]] {
            var inputs = [Int32](repeating: 0, count: 24), targets = [Int32](repeating: 0, count: 24)
            var seen: [[Int32]] = []
            inputs.withUnsafeMutableBufferPointer { i in
                targets.withUnsafeMutableBufferPointer { t in
                    e.forEach(inputs: i.baseAddress!, targets: t.baseAddress!) { index in
                        seen.append(Array(i) + Array(t))
                        XCTAssertEqual(Array(t), i.map { $0 + 1 })
                        XCTAssertEqual(Int(i[0]), e.offsets[index * 3])
                    }
                }
            }
            return seen
        }
        let first = collect(evalA)
        XCTAssertEqual(first.count, 5)
        XCTAssertEqual(first, collect(evalA), "the same batches every time")
        XCTAssertEqual(first, collect(evalB))
        assertLTEError(try EvaluationBatches(tokens: shard, batches: 0, batchSize: 1, contextLength: 8, seed: 0), contains: "at least 1")
    }
}
