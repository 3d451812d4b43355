import Crypto
import Foundation
import LTEBase

/// A worker's own identity (open membership): an Ed25519 key pair, made by `lte keys add NAME`.
/// The run keeps the public half (`RUN/keys/NAME.pub`), the worker the private half (`NAME.key`);
/// every hello, push and leave it sends is signed, so knowing a worker's name is not enough to
/// speak for it — with one shared secret, every worker could impersonate every other.
///
/// Files hold lowercase hex of the 32 raw key bytes (and a newline), like `SharedSecret` files.
public struct IdentityKey: @unchecked Sendable {   // the key is immutable
    let privateKey: Curve25519.Signing.PrivateKey

    public init() { privateKey = Curve25519.Signing.PrivateKey() }

    public init(rawBytes: Data) throws {
        do { privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: rawBytes) } catch {
            throw LTEError("an identity key is 32 bytes, got \(rawBytes.count)")
        }
    }

    public var rawBytes: Data { privateKey.rawRepresentation }
    public var publicKey: Curve25519.Signing.PublicKey { privateKey.publicKey }

    /// Reads a private key file written by `lte keys add`.
    public static func load(contentsOf path: String) throws -> IdentityKey {
        guard let bytes = try? IdentityKeyFile.read(path) else {
            throw LTEError("key file \(path): cannot read it, or it is not 64 hex digits (make one with `lte keys add --run RUN NAME`)")
        }
        return try IdentityKey(rawBytes: bytes)
    }

    func sign(_ digest: Data) -> Data {
        // Signing fails only for a malformed key, which `init` has ruled out.
        (try? privateKey.signature(for: digest)) ?? Data()
    }
}

/// The hex file format of identity keys, public and private alike.
public enum IdentityKeyFile {
    /// The 32 bytes a key file holds, or nil when it is not 64 hex digits.
    public static func read(_ path: String) throws -> Data? {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return decodeHex(text)
    }

    public static func hex(_ bytes: Data) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    public static func decodeHex(_ text: String) -> Data? {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        var out = Data(capacity: 32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
}

/// What the server knows of a worker name when identities are in use.
public enum IdentityStatus: @unchecked Sendable {   // public keys are immutable
    case known(Curve25519.Signing.PublicKey)
    /// No key was ever added under this name.
    case unknown
    /// `lte keys revoke NAME`: refused from its next message on.
    case revoked
}

/// The server's list of identities, consulted for every signed message (so a revocation takes
/// effect from the revoked worker's next message, mid-run).
public protocol IdentityVerifier: Sendable {
    func status(of worker: String) -> IdentityStatus
}

/// Signing and checking the `signature` field of hello, push and leave.
///
/// The signature covers SHA-256("lte-signed-message" ‖ message type ‖ every body byte before the
/// signature field): the worker name, round, nonce, heads and tensors, so nothing in the message can
/// be changed, and a hello's signature cannot pass as a push's.
extension WireCodec {
    static func signedDigest(_ type: MessageType, _ covered: UnsafeRawBufferPointer) -> Data {
        var hasher = SHA256()
        hasher.update(data: Data("lte-signed-message".utf8))
        withUnsafeBytes(of: type.rawValue.littleEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: covered)
        return Data(hasher.finalize())
    }

    /// Writes the signature field: a fresh signature with this codec's key, else the message's own.
    func writeSignature(_ stored: Data, _ type: MessageType, to w: inout ByteWriter) throws {
        var signature = stored
        if let signer {
            signature = w.data.withUnsafeBytes { signer.sign(Self.signedDigest(type, UnsafeRawBufferPointer(rebasing: $0[FrameHeader.byteCount...]))) }
        }
        guard signature.isEmpty || signature.count == 64 else {
            throw WireError(.invalidValue, "\(type) signature is \(signature.count) bytes, must be 64 or none")
        }
        w.int(UInt32(signature.count))
        signature.withUnsafeBytes { w.raw($0) }
    }

    /// Reads the signature field and, on a server with identities, checks it is `worker`'s.
    func readSignature(_ type: MessageType, worker: String, from r: inout ByteReader) throws -> Data {
        let coveredEnd = r.offset
        let signature = try r.blob("\(type) signature")
        guard signature.isEmpty || signature.count == 64 else {
            throw WireError(.invalidValue, "\(type) signature is \(signature.count) bytes, must be 64 or none")
        }
        guard let verifier else { return signature }
        let name = worker.prefix(80).debugDescription
        switch verifier.status(of: worker) {
        case .unknown:
            throw WireError(.authentication, "\(type) from \(name): no such identity in this run (add it with `lte keys add`)")
        case .revoked:
            throw WireError(.authentication, "\(type) from \(name): this identity is revoked")
        case .known(let key):
            guard !signature.isEmpty else {
                throw WireError(.authentication, "\(type) from \(name) is not signed: this run admits workers by key (--key FILE)")
            }
            let digest = Self.signedDigest(type, UnsafeRawBufferPointer(rebasing: r.bytes[FrameHeader.byteCount..<coveredEnd]))
            guard key.isValidSignature(signature, for: digest) else {
                throw WireError(.badMAC, "\(type) from \(name): the signature is not by \(name)'s key (impostor or tampered)")
            }
        }
        return signature
    }
}
