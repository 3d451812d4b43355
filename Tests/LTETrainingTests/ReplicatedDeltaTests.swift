import Foundation
import LTEModel
import LTENumerics
@testable import LTETraining
import XCTest

/// Replicated tensors in a quantized push format travel as their change since the last merge
/// (`ReplicatedDelta`): against a naive double-precision reference, with the bound each format's
/// definition gives, and the same bits wherever the same bytes meet the same base.
final class ReplicatedDeltaTests: XCTestCase {
    var rng = SeededGenerator(seed: 11)

    /// Values near 1 (norm gains) and near 0.02 (embeddings) that moved a little since `base`.
    func baseAndValues(_ count: Int) -> (base: [Float], values: [Float]) {
        let base = (0..<count).map { i in i % 3 == 0 ? 1 + 0.01 * rng.nextNormal() : 0.02 * rng.nextNormal() }
        let values = base.enumerated().map { i, b in b + (i % 5 == 0 ? 0 : 1e-3 * rng.nextNormal()) }
        return (base, values)
    }

    func testChangeRoundTripsWithinEachFormatsBound() {
        let count = 64 * 37 + 21
        let (base, values) = baseAndValues(count)
        for format in [QuantizedFormat.bf16, .int8, .nf4] {
            let delta = values.withUnsafeBufferPointer { v in base.withUnsafeBufferPointer { b in
                ReplicatedDelta(values: v.baseAddress!, base: b.baseAddress!, count: count, format: format) } }
            // Blocks as rounds carry them: 256 values for int8, 64 for nf4.
            let block = format.pushedBlockSize
            XCTAssertEqual(delta.quantized.bytes.count, format.byteCount(values: count, blockSize: block))
            let got = base.withUnsafeBufferPointer { delta.values(over: $0.baseAddress!).array }
            for blockStart in stride(from: 0, to: count, by: block) {
                let range = blockStart..<min(count, blockStart + block)
                // The change, in double; its block's absolute maximum sets int8's and nf4's step.
                let change = range.map { Double(values[$0]) - Double(base[$0]) }
                let m = change.map(abs).max()!
                for (k, i) in range.enumerated() {
                    let bound: Double
                    switch format {
                    case .bf16: bound = abs(change[k]) / 256
                    case .int8: bound = m / 254 * (1 + 1e-5)
                    // Half the widest code gap, against a block scale itself held in 8 bits (≤ ½ step of the spread).
                    default: bound = m * Double(NormalFloat4.maxRelativeError) * 1.05 + m / 127
                    }
                    // Plus float32 rounding of the change and of base + change.
                    let slack = 2 * Double(Float.ulpOfOne) * (abs(Double(base[i])) + abs(Double(values[i])))
                    XCTAssertLessThanOrEqual(abs(Double(got[i]) - Double(values[i])), bound + slack, "\(format) element \(i)")
                }
            }
            // The same bytes over the same base are the same bits (what every node computes).
            let again = ReplicatedDelta(received: QuantizedTensor(format: format, count: count, bytes: delta.quantized.bytes, blockSize: block)!)
            XCTAssertEqual(base.withUnsafeBufferPointer { again.values(over: $0.baseAddress!).array }.map(\.bitPattern), got.map(\.bitPattern))
        }
    }

    /// A change too small for the format's step rounds to nothing in int8's block of a larger
    /// change, but is kept whole in its own block: the error is relative to the change, not the value.
    func testErrorIsRelativeToTheChangeNotTheValue() {
        let block = QuantizedFormat.int8.pushedBlockSize, count = 2 * block
        let base = [Float](repeating: 1, count: count)
        var values = base
        for i in 0..<64 { values[i] = 1 + 1e-6 * Float(i + 1) }   // changes 1e-6 … 6.4e-5 in block 0, none in block 1
        let delta = values.withUnsafeBufferPointer { v in base.withUnsafeBufferPointer { b in
            ReplicatedDelta(values: v.baseAddress!, base: b.baseAddress!, count: count, format: .int8) } }
        let got = base.withUnsafeBufferPointer { delta.values(over: $0.baseAddress!).array }
        for i in 0..<64 { XCTAssertEqual(Double(got[i]), Double(values[i]), accuracy: 6.4e-5 / 254 * 1.01 + 2.4e-7, "element \(i)") }
        XCTAssertEqual(Array(got[64...]), Array(base[64...]), "unchanged values stay exactly as they were")
        // Sent as values instead, int8 would hold 1 ± 1/254: every one of these changes would be lost.
        let asValues = QuantizedTensor(quantizing: values, format: .int8, blockSize: block).values
        XCTAssertEqual(asValues[0], asValues[1], "the test's changes would have survived quantizing the values")
    }

    /// The server's side: after `merge`, the weights hold base + the quantized change of the mean,
    /// exactly what a worker computes from the bytes it is sent; with f32 the exact mean stays.
    func testSettledMeanIsWhatEveryWorkerComputes() throws {
        let model = ModelConfig(vocabSize: 11, dim: 16, layers: 1, heads: 2, ffnDim: 32, contextLength: 8)
        var lora = LoRAConfig()
        lora.rank = 2; lora.alpha = 4
        for format in [QuantizedFormat.f32, .int8] {
            let main = try MainWeights(model: model, lora: lora, totalHeads: 2, seed: 3)
            let base = main.packReplicated(main.model.params.pointer)
            let pushes = (0..<2).map { h in
                MainWeights.Push(head: h, factors: FloatBuffer(count: main.layout!.count),
                                 replicated: FloatBuffer(base.array.map { $0 + 0.01 * rng.nextNormal() }))
            }
            let mean = main.merge(pushes)
            let sent = main.settleReplicatedMean(mean, base: base, format: format)
            let held = main.packReplicated(main.model.params.pointer).array
            if let sent {
                XCTAssertEqual(held.map(\.bitPattern), sent.values(over: base.pointer).array.map(\.bitPattern))
                XCTAssertNotEqual(held, mean, "int8 held the exact mean: the change was not quantized")
            } else {
                XCTAssertEqual(held, mean)
            }
        }
    }
}
