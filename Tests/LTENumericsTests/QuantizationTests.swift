import Foundation
import XCTest
@testable import LTENumerics

/// Each quantized format against a naive double-precision reference written from its definition,
/// with the error bound the definition implies, and the bytes' determinism.
final class QuantizationTests: XCTestCase {
    var rng = SeededGenerator(seed: 7)

    /// Values whose blocks have very different scales, a zero block, and a ragged tail: 2 scale
    /// blocks of nf4's double quantization and more.
    func awkwardValues(_ count: Int) -> [Float] {
        (0..<count).map { i in
            let block = i / QuantizedFormat.blockSize
            if block == 3 { return 0 }
            let scale = Float(pow(10, Double(block % 7) - 3))   // 1e-3 … 1e3
            return rng.nextNormal() * scale
        }
    }

    func testNF4CodeBookIsQLoRAs() {
        // QLoRA (Dettmers et al. 2023), appendix E, as published in bitsandbytes' NF4 table.
        let published: [Double] = [
            -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
            -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
            0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
            0.7229568362236023, 1.0,
        ]
        XCTAssertEqual(NormalFloat4.values.map { Float($0) }, published.map { Float($0) })
        XCTAssertEqual(NormalFloat4.values.filter { $0 == 0 }.count, 1, "an exact zero")
    }

    func testNF4CodeIsTheNearestValue() {
        NormalFloat4.midpoints.withUnsafeBufferPointer { mid in
            for i in 0...20_000 {
                let x = -1.1 + 2.2 * Float(i) / 20_000
                let c = Int(NormalFloat4.code(x, midpoints: mid.baseAddress!))
                let nearest = NormalFloat4.values.map { abs(Double($0) - Double(x)) }.min()!
                XCTAssertLessThanOrEqual(abs(Double(NormalFloat4.values[c]) - Double(x)), nearest + 1e-7, "x = \(x)")
            }
        }
    }

    func testBF16IsRoundToNearestEven() {
        var values = awkwardValues(3000)
        // Exact ties: halfway between two bf16 neighbours, with an even and an odd lower neighbour.
        values += [Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), -Float(bitPattern: 0x3F80_8000)]
        let q = QuantizedTensor(quantizing: values, format: .bf16)
        XCTAssertEqual(q.bytes.count, 2 * values.count)
        for (x, y) in zip(values, q.values) {
            // Reference: the two bf16 neighbours of x, the nearer one, ties to the even upper half.
            let down = Float(bitPattern: x.bitPattern & 0xFFFF_0000)
            let up = Float(bitPattern: (x.bitPattern & 0xFFFF_0000) &+ 0x1_0000)
            let dDown = abs(Double(x) - Double(down)), dUp = abs(Double(x) - Double(up))
            let expected = dDown < dUp ? down : dUp < dDown ? up : ((down.bitPattern >> 16) & 1 == 0 ? down : up)
            XCTAssertEqual(y.bitPattern, expected.bitPattern, "bf16(\(x))")
        }
    }

    func testInt8AgainstReference() {
        // Blocks of 64 (frozen weights) and of 256 (rounds: `pushedBlockSize`), each with a ragged tail.
        for size in [QuantizedFormat.blockSize, QuantizedFormat.int8.pushedBlockSize] {
            let values = awkwardValues(size * 10 + 29)
            let q = QuantizedTensor(quantizing: values, format: .int8, blockSize: size)
            XCTAssertEqual(q.bytes.count, QuantizedFormat.int8.byteCount(values: values.count, blockSize: size))
            XCTAssertEqual(q.bytes.count, values.count + 4 * 11)
            let y = q.values
            for b in 0..<((values.count + size - 1) / size) {
                let block = Array(values[(b * size)..<min(values.count, (b + 1) * size)])
                let m = block.map { abs(Double($0)) }.max()!
                for (k, x) in block.enumerated() {
                    let i = b * size + k
                    let reference = m == 0 ? 0 : (Double(x) / m * 127).rounded() / 127 * m
                    // Half a step of the code, and float32 rounding of the scale and the product.
                    XCTAssertLessThanOrEqual(abs(Double(y[i]) - Double(x)), m / 254 * (1 + 1e-5) + 1e-30, "int8/\(size) error at \(i)")
                    XCTAssertEqual(Double(y[i]), reference, accuracy: m / 127 * 1e-5 + 1e-30, "int8/\(size) against the reference at \(i)")
                }
            }
        }
        XCTAssertEqual(QuantizedFormat.int8.pushedBlockSize, 256)
        XCTAssertEqual(QuantizedFormat.nf4.pushedBlockSize, QuantizedFormat.blockSize)
    }

    func testNF4AgainstReference() {
        let count = 64 * 600 + 37   // 601 blocks: 3 scale blocks of 256
        let values = awkwardValues(count)
        let q = QuantizedTensor(quantizing: values, format: .nf4)
        XCTAssertEqual(q.bytes.count, QuantizedFormat.nf4.byteCount(values: count))
        let y = q.values
        // Reference double quantization of the block maxima, from the definition.
        let blocks = (count + 63) / 64
        let maxima = (0..<blocks).map { b in values[(b * 64)..<min(count, b * 64 + 64)].map { abs(Double($0)) }.max()! }
        let offset = maxima.reduce(0, +) / Double(blocks)
        var worstRelative = 0.0
        for b in 0..<blocks {
            let j = b / 256
            let group = maxima[(j * 256)..<min(blocks, j * 256 + 256)]
            let c = group.map { abs($0 - offset) }.max()!
            let scale = offset + (c == 0 ? 0 : ((maxima[b] - offset) / c * 127).rounded() / 127 * c)
            XCTAssertEqual(scale, maxima[b], accuracy: c / 254 * (1 + 1e-4) + 1e-6 * offset, "block scale \(b)")
            for i in (b * 64)..<min(count, b * 64 + 64) {
                let x = Double(values[i])
                // The code is the nearest value of x / scale (clamped to ±1), so the error is at most
                // half the widest gap times the scale, plus what the scale itself is off by.
                let nearest = scale > 0 ? NormalFloat4.values.map { Double($0) * scale }.min { abs($0 - x) < abs($1 - x) }! : 0
                // float32's m̂ = offset + q/127·c carries a few ulps of the larger of offset and c.
                let scaleRounding = 4 * (abs(offset) + c) * pow(2, -24)
                XCTAssertEqual(Double(y[i]), nearest, accuracy: max(scale, 1e-30) * 2e-6 + scaleRounding, "nf4 against the reference at \(i)")
                let bound = Double(NormalFloat4.maxRelativeError) * max(scale, maxima[b]) + abs(scale - maxima[b]) + scaleRounding
                XCTAssertLessThanOrEqual(abs(Double(y[i]) - x), bound * (1 + 1e-5) + 1e-30, "nf4 error at \(i)")
                if maxima[b] > 0 { worstRelative = max(worstRelative, abs(Double(y[i]) - x) / maxima[b]) }
            }
        }
        XCTAssertGreaterThan(worstRelative, 0.01, "the test data exercise the coarse codes")
        XCTAssertEqual(y[(3 * 64)..<(4 * 64)].filter { $0 != 0 }.count, 0, "a zero block stays zero")
    }

    /// nf4's block-at-a-time decoder (a table of byte pairs, no per-value branch) gives the bits of
    /// the definition's value-by-value decoder, for whole blocks, a ragged last block and odd counts.
    func testNF4FastDecodeEqualsTheNaiveOneBitForBit() {
        for count in [1, 63, 64, 65, 64 * 300 + 37, 64 * 600] {
            let q = QuantizedTensor(quantizing: awkwardValues(count), format: .nf4)
            var naive = [Float](repeating: .nan, count: count)
            q.bytes.withUnsafeBytes { raw in
                naive.withUnsafeMutableBufferPointer { QuantizedTensor.decodeNF4Naive(raw.baseAddress!, count: count, into: $0.baseAddress!) }
            }
            XCTAssertEqual(q.values.map(\.bitPattern), naive.map(\.bitPattern), "count \(count)")
            // Into an address that is not 8-byte aligned (a tensor at an odd offset of a group).
            let shifted = FloatBuffer(count: count + 1)
            q.dequantize(into: shifted.pointer + 1)
            XCTAssertEqual((0..<count).map { shifted[1 + $0].bitPattern }, naive.map(\.bitPattern), "count \(count), shifted")
        }
    }

    func testBytesAreTheSameAtOneAndTwoThreads() {
        let values = awkwardValues(64 * 1100 + 3)
        for format in QuantizedFormat.allCases {
            Parallel.threads = 1
            let one = QuantizedTensor(quantizing: values, format: format)
            Parallel.threads = 2
            let two = QuantizedTensor(quantizing: values, format: format)
            Parallel.threads = 1
            XCTAssertEqual(one.bytes, two.bytes, "\(format) bytes depend on the thread count")
            // And a reader of the bytes gets the same floats as the writer.
            XCTAssertEqual(QuantizedTensor(format: format, count: values.count, bytes: one.bytes)?.values.map(\.bitPattern),
                           one.values.map(\.bitPattern))
        }
    }

    func testSizesAndRefusals() {
        XCTAssertEqual(QuantizedFormat.f32.byteCount(values: 1000), 4000)
        XCTAssertEqual(QuantizedFormat.int8.byteCount(values: 64 * 10), 640 + 40)
        XCTAssertEqual(QuantizedFormat.nf4.byteCount(values: 64 * 512), 4 + 8 + 512 + 64 * 256)
        XCTAssertLessThan(Double(QuantizedFormat.nf4.byteCount(values: 1 << 20)) / Double(4 << 20), 0.14)
        XCTAssertNil(QuantizedTensor(format: .int8, count: 10, bytes: [UInt8](repeating: 0, count: 3)))
        XCTAssertNil(QuantizedTensor(format: .nf4, count: 64, bytes: [UInt8](repeating: 0, count: QuantizedFormat.nf4.byteCount(values: 64)), blockSize: 256),
                     "nf4 has blocks of 64 only")
        XCTAssertEqual(QuantizedFormat.int8.byteCount(values: 256 * 3 + 1, blockSize: 256), 256 * 3 + 1 + 16)
        XCTAssertThrowsError(try QuantizedFormat(parsing: "fp4", key: "lte.frozen_weights")) { e in
            XCTAssertTrue("\(e)".contains("f32, bf16, int8, nf4"), "\(e)")
        }
        let f32 = QuantizedTensor(quantizing: [1, -2.5, .pi], format: .f32)
        XCTAssertEqual(f32.values, [1, -2.5, .pi])
    }
}
