import Foundation
import LTENet
import LTENumerics
import XCTest

/// Seeded random mutations of valid frames: the decoder must never crash, and anything it accepts
/// must re-encode to exactly the same bytes (the encoding is canonical).
final class CodecFuzzTests: XCTestCase {
    func testRandomMutations() throws {
        let codec = WireCodec(maxMessageBytes: 1 << 20)
        let seeds = try WireFixtures.all.map { try codec.encode($0) }
        var g = SeededGenerator(seed: 20_240_601)
        var accepted = 0, refused = 0
        var kinds = Set<WireError.Kind>()
        for i in 0..<20_000 {
            var f = seeds[g.nextInt(below: seeds.count)]
            let edits = 1 + g.nextInt(below: 4)
            for _ in 0..<edits { mutate(&f, &g) }
            // Most iterations re-seal so the mutation reaches the body parser; a few keep the stale
            // trailer to exercise the checksum path.
            if i % 8 != 0, f.count >= 52 {
                f = reseal(settingBodyLength(f, g.nextInt(below: 4) == 0 ? UInt64(g.next() % 4096) : UInt64(f.count - 52)), with: codec)
            }
            do {
                let m = try codec.decode(f)
                accepted += 1
                XCTAssertEqual(try codec.encode(m), f, "iteration \(i): accepted \(m.type) does not re-encode identically")
            } catch let e as WireError {
                refused += 1
                kinds.insert(e.kind)
            }
        }
        XCTAssertGreaterThan(accepted, 100, "the fuzzer should also produce valid variants")
        XCTAssertGreaterThan(refused, 10_000)
        XCTAssertGreaterThanOrEqual(kinds.count, 8, "errors seen: \(kinds)")
    }

    private func mutate(_ f: inout Data, _ g: inout SeededGenerator) {
        guard !f.isEmpty else { f.append(UInt8(truncatingIfNeeded: g.next())); return }
        let at = g.nextInt(below: f.count)
        switch g.nextInt(below: 7) {
        case 0: f[f.startIndex + at] ^= UInt8(1 << g.nextInt(below: 8))               // bit flip
        case 1: f[f.startIndex + at] = UInt8(truncatingIfNeeded: g.next())            // random byte
        case 2: f.removeSubrange((f.startIndex + at)..<min(f.endIndex, f.startIndex + at + 1 + g.nextInt(below: 8)))
        case 3: f.insert(contentsOf: (0..<(1 + g.nextInt(below: 8))).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: f.startIndex + at)
        case 4:                                                                      // interesting 32-bit value
            let values: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 8, 9]
            let v = values[g.nextInt(below: values.count)]
            for k in 0..<4 where at + k < f.count { f[f.startIndex + at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        case 5: f = f.prefix(at)                                                      // truncate
        default:                                                                     // duplicate a chunk
            let n = min(1 + g.nextInt(below: 16), f.count - at)
            f.insert(contentsOf: Array(f[(f.startIndex + at)..<(f.startIndex + at + n)]), at: f.startIndex + at)
        }
    }
}
