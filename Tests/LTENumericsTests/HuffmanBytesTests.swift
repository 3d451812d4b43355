import Foundation
import XCTest
@testable import LTENumerics

/// `HuffmanBytes` against its definition: lossless on every kind of input, code lengths as short as
/// Huffman's (a naive pairwise-merging reference gives the optimal cost), at most 15 bits, and a
/// decoder that refuses whatever the encoder would not have written.
final class HuffmanBytesTests: XCTestCase {
    var rng = SeededGenerator(seed: 11)

    /// int8 codes of bell-shaped values, as factors give (absmax per block of 256).
    func int8Codes(_ count: Int) -> [UInt8] {
        let q = QuantizedTensor(quantizing: (0..<count).map { _ in rng.nextNormal() }, format: .int8, blockSize: 256)
        return q.bytes
    }

    func assertRoundTrip(_ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let coded = HuffmanBytes.encode(bytes)
        XCTAssertEqual(coded.count, HuffmanBytes.encodedCount(bytes), "\(what): encodedCount", file: file, line: line)
        XCTAssertEqual(HuffmanBytes.decode(coded, expectedCount: bytes.count), bytes, "\(what): round trip", file: file, line: line)
        XCTAssertNil(HuffmanBytes.decode(coded, expectedCount: bytes.count + 1), "\(what): another count", file: file, line: line)
    }

    func testRoundTrips() {
        assertRoundTrip([], "empty")
        assertRoundTrip([42], "one byte")
        assertRoundTrip([UInt8](repeating: 7, count: 1000), "one value repeated")
        assertRoundTrip([0, 255, 0, 0, 255], "two values")
        assertRoundTrip((0..<4096).map { UInt8($0 & 0xFF) }, "every value equally often")
        assertRoundTrip((0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }, "uniform random")
        assertRoundTrip(int8Codes(100_003), "int8 codes of normal values")
        // Frequencies of the Fibonacci numbers make Huffman's tree a chain 25 deep: the lengths must be
        // limited to 15 bits and the bytes still come back.
        var fib = [1, 1]
        while fib.count < 26 { fib.append(fib[fib.count - 1] + fib[fib.count - 2]) }
        var skewed: [UInt8] = []
        for (v, n) in fib.enumerated() { skewed += [UInt8](repeating: UInt8(v * 9), count: n) }
        skewed.shuffle(using: &rng)
        let h = HuffmanBytes.histogram(skewed)
        XCTAssertEqual(HuffmanBytes.unlimitedLengths(h).max(), 25, "Huffman's own tree is 25 deep")
        XCTAssertLessThanOrEqual(HuffmanBytes.codeLengths(h).max()!, UInt8(HuffmanBytes.maxCodeLength), "limited to 15 bits")
        assertRoundTrip(skewed, "Fibonacci frequencies")
    }

    /// The cost of an optimal prefix code by the textbook construction: repeatedly merge the two
    /// lightest weights, each merge adding its weight to the total bit count.
    func optimalBits(_ histogram: [Int]) -> Int {
        var w = histogram.filter { $0 > 0 }
        if w.count == 1 { return w[0] }
        var total = 0
        while w.count > 1 {
            w.sort()
            let s = w[0] + w[1]
            total += s
            w = [s] + w.dropFirst(2)
        }
        return total
    }

    func testCodeLengthsAreHuffmansAndCanonical() {
        for trial in 0..<20 {
            let bytes = trial % 2 == 0 ? int8Codes(2000 + 97 * trial) : (0..<3000).map { _ in UInt8(min(255, Int(abs(rng.nextNormal()) * Float(3 + trial)))) }
            let h = HuffmanBytes.histogram(bytes)
            let lengths = HuffmanBytes.codeLengths(h)
            let bits = (0..<256).reduce(0) { $0 + h[$1] * Int(lengths[$1]) }
            XCTAssertEqual(bits, optimalBits(h), "trial \(trial): as short as Huffman's code")
            // Kraft equality: a full tree, no code space left unused.
            let longest = Int(lengths.max()!)
            XCTAssertEqual(lengths.reduce(0) { $1 == 0 ? $0 : $0 + (1 << (longest - Int($1))) }, 1 << longest, "trial \(trial)")
            // Canonical: no code is a prefix of another, shorter codes numerically first.
            let codes = HuffmanBytes.canonicalCodes(lengths)
            let present = (0..<256).filter { lengths[$0] > 0 }
            for a in present {
                for b in present where a != b && lengths[a] <= lengths[b] {
                    XCTAssertNotEqual(codes[b] >> UInt32(lengths[b] - lengths[a]), codes[a], "trial \(trial): \(a) prefixes \(b)")
                }
            }
        }
    }

    func testInt8FactorsCodedTakeUnderAQuarterOfFloat32() {
        // What `lte.push_format int8` buys on bell-shaped factors: 1 byte and ⅛ bit of scale a value,
        // less the code's saving, against 4 bytes.
        let count = 1 << 18
        let q = QuantizedTensor(quantizing: (0..<count).map { _ in rng.nextNormal() * 0.02 }, format: .int8, blockSize: QuantizedFormat.int8.pushedBlockSize)
        let ratio = Double(q.wireByteCount) / Double(4 * count)
        XCTAssertLessThan(ratio, 0.25, "coded int8 is \(ratio) of float32")
        XCTAssertGreaterThan(ratio, 0.2, "a normal's int8 codes hold about 7.4 bits: \(ratio) is implausibly small")
        XCTAssertEqual(q.wireByteCount, q.wireBytes.count)
        let back = QuantizedTensor(format: .int8, count: count, blockSize: 256, wireBytes: q.wireBytes)
        XCTAssertEqual(back, q, "the very bytes, so the very values")
        XCTAssertNil(QuantizedTensor(format: .int8, count: count, blockSize: 64, wireBytes: q.wireBytes), "blocks of 64 need other bytes")
        // Other formats travel as they are.
        let nf4 = QuantizedTensor(quantizing: [1, 2, 3], format: .nf4)
        XCTAssertEqual(nf4.wireBytes, nf4.bytes)
    }

    func testMalformedInputIsRefused() {
        let bytes = int8Codes(3000)
        let coded = HuffmanBytes.encode(bytes)
        XCTAssertNil(HuffmanBytes.decode(Array(coded.dropLast()), expectedCount: bytes.count), "truncated")
        XCTAssertNil(HuffmanBytes.decode(coded + [0], expectedCount: bytes.count), "a byte left over")
        XCTAssertNil(HuffmanBytes.decode(Array(coded.prefix(100)), expectedCount: bytes.count), "shorter than the header")
        XCTAssertNil(HuffmanBytes.decode(coded, expectedCount: -1), "a negative count")
        // Every length 1: 256 codes of one bit over-subscribe the code space.
        XCTAssertNil(HuffmanBytes.decode([4, 0, 0, 0] + [UInt8](repeating: 0x11, count: 128) + [0], expectedCount: 4))
        // One code of 2 bits (value 0 → 00): the window 01 is a code no value has.
        let lone = [2, 0, 0, 0] + [0x02] + [UInt8](repeating: 0, count: 127)
        XCTAssertEqual(HuffmanBytes.decode(lone + [0b0000_0000], expectedCount: 2), [0, 0])
        XCTAssertNil(HuffmanBytes.decode(lone + [0b0100_0000], expectedCount: 2), "an unused code")
        XCTAssertNil(HuffmanBytes.decode(lone + [0b0000_0001], expectedCount: 2), "padding that is not zero")
        XCTAssertNil(HuffmanBytes.decode([5, 0, 0, 0] + [UInt8](repeating: 0, count: 128), expectedCount: 5), "bytes but no codes")
        // Random damage never crashes and never yields the wrong number of bytes.
        for trial in 0..<3000 {
            var d = coded
            for _ in 0..<(1 + trial % 4) { d[Int.random(in: 0..<d.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
            if trial % 7 == 0 { d = Array(d.prefix(Int.random(in: 0..<d.count, using: &rng))) }
            if let out = HuffmanBytes.decode(d, expectedCount: bytes.count) { XCTAssertEqual(out.count, bytes.count) }
        }
    }
}
