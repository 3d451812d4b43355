import Foundation
import LTEBase
import LTENet
import LTENumerics
import LTETestSupport
import XCTest

final class AuthenticatorTests: XCTestCase {
    func tempFile(_ contents: Data) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lte-secret-\(UUID().uuidString)")
        try contents.write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    func testHMACMatchesRFC4231TestCase1() {
        // RFC 4231 test case 1: key 0x0b × 20, data "Hi There".
        let auth = Authenticator(secret: try! SharedSecret(bytes: [UInt8](repeating: 0x0b, count: 20)))
        let mac = auth.trailer(for: Data("Hi There".utf8))
        XCTAssertEqual(mac.map { String(format: "%02x", $0) }.joined(),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        XCTAssertTrue(auth.isValid(trailer: mac, for: Data("Hi There".utf8)))
        XCTAssertFalse(auth.isValid(trailer: mac, for: Data("Hi there".utf8)))
        XCTAssertFalse(auth.isValid(trailer: mac.prefix(31), for: Data("Hi There".utf8)))
    }

    func testChecksumModeIsPlainSHA256() {
        let sum = Authenticator(secret: nil).trailer(for: Data("abc".utf8))
        XCTAssertEqual(sum.map { String(format: "%02x", $0) }.joined(),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testLoadHexSecret() throws {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        let s = try SharedSecret.load(contentsOf: tempFile(Data((hex + "\n").utf8)))
        XCTAssertEqual(s.byteCount, 32)
        XCTAssertEqual(s.hexString, hex)
        let upper = try SharedSecret.load(contentsOf: tempFile(Data("  \(hex.uppercased())\r\n".utf8)))
        XCTAssertEqual(upper.hexString, hex)
        let random = SharedSecret.random()
        XCTAssertEqual(try SharedSecret.load(contentsOf: tempFile(Data(random.hexString.utf8))).hexString, random.hexString)
    }

    func testLoadRawSecret() throws {
        let raw = Data((0..<24).map { UInt8(truncatingIfNeeded: $0 * 7 + 200) })
        let s = try SharedSecret.load(contentsOf: tempFile(raw))
        XCTAssertEqual(s.byteCount, 24)
        // A passphrase that is not hex is taken as raw bytes, whitespace included.
        XCTAssertEqual(try SharedSecret.load(contentsOf: tempFile(Data("correct horse battery staple".utf8))).byteCount, 28)
        // Fullwidth digits are hex digits to `Character`, but not hex here: raw, 3 bytes each.
        XCTAssertEqual(try SharedSecret.load(contentsOf: tempFile(Data(String(repeating: "\u{FF10}", count: 8).utf8))).byteCount, 24)
    }

    func testSecretErrors() throws {
        assertLTEError(try SharedSecret.load(contentsOf: "/nonexistent/lte-secret"), contains: "cannot read")
        assertLTEError(try SharedSecret.load(contentsOf: tempFile(Data())), contains: "is empty")
        assertLTEError(try SharedSecret.load(contentsOf: tempFile(Data("00112233".utf8))), contains: "4 hex-encoded bytes; need at least 16")
        assertLTEError(try SharedSecret.load(contentsOf: tempFile(Data("abc".utf8))), contains: "odd number of digits")
        assertLTEError(try SharedSecret.load(contentsOf: tempFile(Data("short pass".utf8))), contains: "10 bytes; need at least 16")
        assertLTEError(try SharedSecret(bytes: [UInt8](repeating: 1, count: 15)), contains: "need at least 16")
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(Authenticator.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Authenticator.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Authenticator.constantTimeEqual([1, 2, 3], [1, 2]))
    }

    func testReplayGuard() {
        let guardian = ReplayGuard(roundWindow: 2, maxNoncesPerRound: 3)
        XCTAssertEqual(guardian.check(peer: "w0", round: 5, nonce: 1), .fresh)
        XCTAssertEqual(guardian.check(peer: "w0", round: 5, nonce: 1), .repeated)
        XCTAssertEqual(guardian.check(peer: "w1", round: 5, nonce: 1), .fresh, "peers are independent")
        XCTAssertEqual(guardian.check(peer: "w0", round: 6, nonce: 1), .fresh, "same nonce, other round")
        XCTAssertThrowsError(try guardian.admit(peer: "w0", round: 6, nonce: 1)) { e in
            XCTAssertEqual((e as? WireError)?.kind, .replayed)
            XCTAssertTrue("\(e)".contains("already received"), "\(e)")
        }
        // Round 9 moves the window to 7...9: round 6 is now stale, and its nonces forgotten safely.
        XCTAssertEqual(guardian.check(peer: "w0", round: 9, nonce: 2), .fresh)
        XCTAssertEqual(guardian.check(peer: "w0", round: 6, nonce: 99), .stale)
        XCTAssertEqual(guardian.check(peer: "w0", round: 5, nonce: 1), .stale)
        XCTAssertEqual(guardian.check(peer: "w0", round: 7, nonce: 3), .fresh, "inside the window")
        XCTAssertEqual(guardian.check(peer: "w0", round: 7, nonce: 4), .fresh)
        XCTAssertEqual(guardian.check(peer: "w0", round: 7, nonce: 5), .fresh)
        XCTAssertEqual(guardian.check(peer: "w0", round: 7, nonce: 6), .tooMany)
        guardian.forget(peer: "w0")
        XCTAssertEqual(guardian.check(peer: "w0", round: 5, nonce: 1), .fresh)
        XCTAssertNotEqual(ReplayGuard.freshNonce(), ReplayGuard.freshNonce())
        // Extreme rounds neither trap nor confuse the window.
        XCTAssertEqual(guardian.check(peer: "x", round: Int.min, nonce: 1), .fresh)
        XCTAssertEqual(guardian.check(peer: "x", round: Int.min + 1, nonce: 1), .fresh)
        XCTAssertEqual(guardian.check(peer: "x", round: Int.max, nonce: 1), .fresh)
        XCTAssertEqual(guardian.check(peer: "x", round: 0, nonce: 1), .stale)
    }

    func testCapturedPushReplayedIsRefused() throws {
        // End to end: decode, then admit by (worker, round, nonce) — what the server does.
        let codec = WireCodec(secret: WireFixtures.secret())
        let frame = try codec.encode(WireFixtures.push)
        let guardian = ReplayGuard()
        func receive(_ f: Data) throws {
            guard case .push(let p) = try codec.decode(f) else { return XCTFail() }
            try guardian.admit(peer: p.workerId, round: p.round, nonce: p.nonce)
        }
        XCTAssertNoThrow(try receive(frame))
        XCTAssertThrowsError(try receive(frame)) { XCTAssertEqual(($0 as? WireError)?.kind, .replayed) }
    }

    func testReplayGuardIsThreadSafe() {
        let guardian = ReplayGuard(roundWindow: 4, maxNoncesPerRound: 100_000)
        let fresh = UnsafeMutablePointer<Int>.allocate(capacity: 8)
        fresh.initialize(repeating: 0, count: 8)
        defer { fresh.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for n in 0..<2000 where guardian.check(peer: "w", round: 1, nonce: UInt64(n)) == .fresh { fresh[t] += 1 }
        }
        XCTAssertEqual((0..<8).reduce(0) { $0 + fresh[$1] }, 2000, "each nonce admitted exactly once")
    }
}
