import Foundation
import LTENet
import XCTest

/// Every malformed frame must produce a `WireError` naming the problem — never a crash, never a
/// message. Frames edited past the trailer are re-sealed so the edit reaches the body parser.
final class CodecRejectionTests: XCTestCase {
    let codec = WireCodec()

    // MARK: raw frame building

    func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func str(_ s: String) -> [UInt8] { le32(UInt32(s.utf8.count)) + Array(s.utf8) }

    /// A sealed frame with an arbitrary body.
    func frame(_ type: UInt16, _ body: [UInt8], version: UInt16 = FrameHeader.currentVersion, flags: UInt32 = 0, with c: WireCodec? = nil) -> Data {
        var f = Data(Array("LTE1".utf8) + le16(version) + le16(type) + le32(flags) + le64(UInt64(body.count)) + body)
        f.append((c ?? codec).authenticator.trailer(for: f))
        return f
    }

    /// roundResult body up to its tensor list, then `tensors` (raw), then `frozenHash` (raw; default: none).
    func roundResultBody(tensorCount: UInt32, _ tensors: [UInt8], frozenHash: [UInt8] = [0]) -> [UInt8] {
        le64(1) + str("c") + [UInt8](repeating: 0, count: 32) + le32(0) + le32(tensorCount) + tensors + frozenHash
    }

    func testHandBuiltFrameDecodes() throws {
        // Sanity: the hand builder agrees with the codec, so the rejections below are for the edit alone.
        let body = roundResultBody(tensorCount: 1, str("t") + le32(1) + le64(1) + [0] + le32(Float(2).bitPattern))
        guard case .roundResult(let r) = try codec.decode(frame(4, body)) else { return XCTFail() }
        XCTAssertEqual(r.tensors, [WireTensor(name: "t", shape: [1], values: [2])])
        XCTAssertNil(r.frozenHash)
        let withHash = roundResultBody(tensorCount: 0, [], frozenHash: [1] + (0..<32).map { UInt8($0) })
        guard case .roundResult(let h) = try codec.decode(frame(4, withHash)) else { return XCTFail() }
        XCTAssertEqual(h.frozenHash?.bytes, (0..<32).map { UInt8($0) })
    }

    /// The frozen-weights hash (wire version 6): a presence byte of 0 or 1, then 32 bytes if 1.
    func testFrozenHashPresenceByteAndLength() {
        let badFlag = assertRefused(codec, frame(4, roundResultBody(tensorCount: 0, [], frozenHash: [2] + [UInt8](repeating: 0, count: 32))), .invalidValue)
        XCTAssertEqual(badFlag?.message, "round result frozen hash: presence byte 2, expected 0 or 1")
        assertRefused(codec, frame(4, roundResultBody(tensorCount: 0, [], frozenHash: [1] + [UInt8](repeating: 0, count: 31))), .truncated)
        assertRefused(codec, frame(4, roundResultBody(tensorCount: 0, [], frozenHash: [])), .truncated)
        assertRefused(codec, frame(4, roundResultBody(tensorCount: 0, [], frozenHash: [0, 0])), .trailingBytes)
    }

    // MARK: frame level

    func testTruncatedAtEveryPrefixLength() throws {
        for c in [WireCodec(), WireCodec(secret: WireFixtures.secret())] {
            for m in WireFixtures.all {
                let f = try c.encode(m)
                for n in 0..<f.count { assertRefused(c, f.prefix(n)) }
                // Also with the length field patched to agree with the cut, re-sealed.
                for n in stride(from: 52, to: f.count, by: 1) {
                    let cut = settingBodyLength(Data(f.prefix(n - 32)) + Data(repeating: 0, count: 32), UInt64(n - 52))
                    assertRefused(c, reseal(cut, with: c))
                }
            }
        }
    }

    func testBadMagicVersionTypeFlags() throws {
        let f = try codec.encode(WireFixtures.hello)
        var bad = Data(f); bad[0] = UInt8(ascii: "X")
        assertRefused(codec, bad, .badMagic)
        assertRefused(codec, Data("GET / HTTP/1.1\r\n\r\n".utf8), .badMagic)
        assertRefused(codec, Data([0x4C, 0x54]), .truncated)
        for old in 2..<FrameHeader.currentVersion { assertRefused(codec, frame(1, [], version: old), .unsupportedVersion) }
        assertRefused(codec, frame(1, [], version: FrameHeader.currentVersion + 1), .unsupportedVersion)
        assertRefused(codec, frame(1, [], version: 0), .unsupportedVersion)
        assertRefused(codec, frame(0, []), .unknownType)
        assertRefused(codec, frame(UInt16(MessageType.allCases.count + 1), []), .unknownType)
        assertRefused(codec, frame(0xFFFF, []), .unknownType)
        assertRefused(codec, frame(5, [], flags: 2), .unknownFlags)
        let e = assertRefused(codec, frame(5, [], version: 9))
        XCTAssertEqual(e?.message, "wire version 9; this build speaks version 7")
    }

    func testOversize() throws {
        let small = WireCodec(maxMessageBytes: 200)
        let f = try codec.encode(WireFixtures.welcome)
        XCTAssertGreaterThan(f.count, 200)
        assertRefused(small, f, .tooLarge)
        assertRefused(small, settingBodyLength(Data(f.prefix(100)), 10_000), .tooLarge)
        XCTAssertThrowsError(try small.encode(WireFixtures.welcome))
    }

    func testLyingBodyLength() throws {
        let f = try codec.encode(WireFixtures.push)
        let body = UInt64(f.count - 52)
        assertRefused(codec, settingBodyLength(f, body + 1), .truncated)
        assertRefused(codec, settingBodyLength(f, body - 1), .lengthMismatch)
        assertRefused(codec, settingBodyLength(f, 0), .lengthMismatch)
        assertRefused(codec, settingBodyLength(f, .max), .tooLarge)
        assertRefused(codec, settingBodyLength(f, UInt64(Int.max)), .tooLarge)
    }

    func testChecksumAndMAC() throws {
        var f = try codec.encode(WireFixtures.push)
        f[40] ^= 0x01
        assertRefused(codec, f, .badChecksum)

        let alice = WireCodec(secret: WireFixtures.secret(1))
        let mallory = WireCodec(secret: WireFixtures.secret(2))
        let signed = try alice.encode(WireFixtures.push)
        XCTAssertNoThrow(try alice.decode(signed))
        assertRefused(mallory, signed, .badMAC)
        var tampered = Data(signed); tampered[30] ^= 0x80
        assertRefused(alice, tampered, .badMAC)
        var badTrailer = Data(signed); badTrailer[badTrailer.count - 1] ^= 1
        assertRefused(alice, badTrailer, .badMAC)
        // Mixing modes is refused both ways: a checksum is not a MAC, and a MAC cannot be checked here.
        assertRefused(alice, try codec.encode(WireFixtures.push), .authentication)
        assertRefused(codec, signed, .authentication)
        // Forging the flag on a checksummed frame does not help.
        var forged = try codec.encode(WireFixtures.push); forged[8] = 1
        assertRefused(alice, forged, .badMAC)
    }

    func testTrailingBytes() throws {
        for m in WireFixtures.all {
            let f = try codec.encode(m)
            var body = Data(f.dropFirst(20).dropLast(32))
            body.append(contentsOf: [0xAA, 0xBB])
            let header = settingBodyLength(Data(f.prefix(20)), UInt64(body.count))
            let padded = reseal(header + body + Data(count: 32), with: codec)
            assertRefused(codec, padded, .trailingBytes)
        }
    }

    // MARK: body level

    func testHugeDimensionsOverflow() {
        let overflow = roundResultBody(tensorCount: 1, str("t") + le32(3) + le64(1 << 32) + le64(1 << 32) + le64(1 << 32))
        assertRefused(codec, frame(4, overflow), .invalidTensor)
        let outOfRange = roundResultBody(tensorCount: 1, str("t") + le32(1) + le64(.max))
        assertRefused(codec, frame(4, outOfRange), .invalidValue)
        let zeroAfterOverflow = roundResultBody(tensorCount: 1, str("t") + le32(3) + le64(1 << 62) + le64(1 << 62) + le64(0))
        assertRefused(codec, frame(4, zeroAfterOverflow), .invalidTensor)
        // Fits Int, but far more floats than the frame holds: refused before allocating.
        let tooMany = roundResultBody(tensorCount: 1, str("t") + le32(2) + le64(1 << 30) + le64(1 << 30))
        assertRefused(codec, frame(4, tooMany), .truncated)
    }

    func testRankAndTensorCounts() {
        let rank9 = roundResultBody(tensorCount: 1, str("t") + le32(9) + (0..<9).flatMap { _ in le64(1) } + [0] + le32(0))
        assertRefused(codec, frame(4, rank9), .invalidTensor)
        let rankHuge = roundResultBody(tensorCount: 1, str("t") + le32(.max))
        assertRefused(codec, frame(4, rankHuge), .invalidTensor)
        let lyingCount = roundResultBody(tensorCount: .max, str("t") + le32(0) + le32(0))
        assertRefused(codec, frame(4, lyingCount), .truncated)
        let one = str("t") + le32(1) + le64(1) + [0] + le32(0)
        assertRefused(codec, frame(4, roundResultBody(tensorCount: 2, one + one)), .invalidTensor)  // duplicate name
        assertRefused(codec, frame(4, roundResultBody(tensorCount: 2, one)), .truncated)           // second missing
    }

    func testStrings() {
        // hello: workerId, headIds, fingerprint, nonce, sent at, maxHeads, signature (none)
        let rest = le32(0) + [UInt8](repeating: 0, count: 32) + le64(0) + le64(0) + le32(0) + le32(0)
        XCTAssertNoThrow(try codec.decode(frame(1, str("w") + rest)))
        assertRefused(codec, frame(1, le32(.max) + rest), .tooLarge)
        assertRefused(codec, frame(1, le32(1000) + Array("w".utf8) + rest), .truncated)
        assertRefused(codec, frame(1, le32(2) + [0xC3, 0x28] + rest), .invalidString)
        assertRefused(codec, frame(1, le32(1) + [0xFF] + rest), .invalidString)
        let tight = WireCodec(maxStringBytes: 4)
        assertRefused(tight, frame(1, str("worker") + rest, with: tight), .tooLarge)
    }

    func testListsAndCounts() {
        let hello = { (heads: [UInt8]) in self.frame(1, self.str("w") + heads + [UInt8](repeating: 0, count: 32) + self.le64(0)) }
        assertRefused(codec, hello(le32(.max)), .truncated)
        assertRefused(codec, hello(le32(2) + le32(3) + le32(3)), .invalidValue)  // duplicate head
        // push with 2 heads but 1 loss
        let push = str("w") + le64(0) + str("b") + le32(2) + le32(0) + le32(1) + le32(1) + le32(0) + le64(0) + le64(0) + le32(0)
        assertRefused(codec, frame(3, push), .invalidValue)
        // push whose round does not fit Int
        let badRound = str("w") + le64(.max) + str("b") + le32(0) + le32(0) + le64(0) + le64(0) + le32(0)
        assertRefused(codec, frame(3, badRound), .invalidValue)
    }

    func testStatusFieldsMustBeSortedAndUnique() {
        let prefix = le64(1) + le32(0) + le32(0) + le32(0)
        XCTAssertNoThrow(try codec.decode(frame(6, prefix + le32(2) + str("a") + str("1") + str("b") + str("2"))))
        assertRefused(codec, frame(6, prefix + le32(2) + str("b") + str("1") + str("a") + str("2")), .invalidValue)
        assertRefused(codec, frame(6, prefix + le32(2) + str("a") + str("1") + str("a") + str("2")), .invalidValue)
        // "é" precomposed vs decomposed: different bytes, equal Swift strings — still a duplicate.
        assertRefused(codec, frame(6, prefix + le32(2) + str("e\u{301}") + str("1") + str("\u{E9}") + str("2")), .invalidValue)
        assertRefused(codec, frame(6, prefix + le32(.max)), .truncated)
    }

    func testEmptyBodiesWhereFieldsAreExpected() {
        for type: UInt16 in [1, 2, 3, 4, 6, 7] { assertRefused(codec, frame(type, []), .truncated) }
        assertRefused(codec, frame(5, [0]), .trailingBytes)
    }
}
