import Crypto
import Foundation
import LTEBase

/// The run's shared secret: every node that holds it can produce and check message MACs.
///
/// At least 16 bytes (128 bits), so a MAC cannot be brute-forced. Loaded from a file that holds
/// either hex (what `openssl rand -hex 32` writes; surrounding whitespace ignored) or raw bytes.
public struct SharedSecret: @unchecked Sendable {  // SymmetricKey is immutable
    public static let minimumBytes = 16

    let key: SymmetricKey

    /// Secret length in bytes.
    public var byteCount: Int { key.bitCount / 8 }

    public init<D: DataProtocol>(bytes: D) throws {
        guard bytes.count >= Self.minimumBytes else {
            throw LTEError("shared secret is \(bytes.count) bytes; need at least \(Self.minimumBytes)")
        }
        key = SymmetricKey(data: Array(bytes))
    }

    /// A fresh random 32-byte secret, e.g. for `lte server` to write on first start.
    public static func random() -> SharedSecret {
        // 32 bytes always pass the length check.
        try! SharedSecret(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }

    /// Lowercase hex of the secret, the form `load(contentsOf:)` reads back.
    public var hexString: String {
        key.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    /// Reads a secret file: hex if the file is nothing but hex digits (and whitespace), raw bytes otherwise.
    public static func load(contentsOf path: String) throws -> SharedSecret {
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw LTEError("secret file \(path): cannot read (\((error as NSError).localizedDescription))")
        }
        guard !contents.isEmpty else { throw LTEError("secret file \(path) is empty") }
        let hint = "generate one with `openssl rand -hex 32 > \(path)`"
        if let text = String(data: contents, encoding: .utf8) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            // ASCII only: `Character.isHexDigit` also accepts fullwidth digits.
            if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0 | 0x20) }) {
                guard trimmed.utf8.count % 2 == 0 else {
                    throw LTEError("secret file \(path) looks like hex but has an odd number of digits (\(trimmed.utf8.count))")
                }
                let bytes = hexBytes(trimmed)
                guard bytes.count >= minimumBytes else {
                    throw LTEError("secret file \(path) holds \(bytes.count) hex-encoded bytes; need at least \(minimumBytes) (\(hint))")
                }
                return try SharedSecret(bytes: bytes)
            }
        }
        guard contents.count >= minimumBytes else {
            throw LTEError("secret file \(path) holds \(contents.count) bytes; need at least \(minimumBytes) (\(hint))")
        }
        return try SharedSecret(bytes: contents)
    }

    private static func hexBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8? = nil
        for c in hex.utf8 {
            let v: UInt8 = c <= 57 ? c - 48 : (c | 0x20) - 87  // '0'-'9', 'a'-'f' / 'A'-'F'
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }
}

/// Computes and checks the 32-byte frame trailer.
///
/// With a secret: HMAC-SHA256(secret, header ‖ body) — only holders of the secret can produce a
/// frame the other side accepts. Without one: plain SHA-256(header ‖ body), which catches corruption
/// but authenticates nothing (for single-machine runs over ipc://). Comparisons are constant-time
/// so response timing leaks nothing about a correct MAC.
public struct Authenticator: Sendable {
    public static let trailerBytes = 32

    public let secret: SharedSecret?

    public init(secret: SharedSecret?) { self.secret = secret }

    /// True when trailers are MACs, false when they are checksums.
    public var authenticates: Bool { secret != nil }

    public func trailer<D: DataProtocol>(for bytes: D) -> Data {
        if let key = secret?.key {
            return Data(HMAC<SHA256>.authenticationCode(for: bytes, using: key))
        }
        return Data(SHA256.hash(data: bytes))
    }

    public func isValid<T: DataProtocol & ContiguousBytes, D: DataProtocol>(trailer: T, for bytes: D) -> Bool {
        guard trailer.count == Self.trailerBytes else { return false }
        if let key = secret?.key {
            return HMAC<SHA256>.isValidAuthenticationCode(trailer, authenticating: bytes, using: key)
        }
        return Self.constantTimeEqual(SHA256.hash(data: bytes), trailer)
    }

    /// Byte comparison whose running time depends only on the lengths.
    public static func constantTimeEqual<A: Sequence, B: Sequence>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        let x = Array(a), y = Array(b)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
