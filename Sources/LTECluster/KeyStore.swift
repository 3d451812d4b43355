import Crypto
import Foundation
import LTEBase
import LTENet
import LTEStore

/// The run's worker identities on disk (open membership): `RUN/keys/NAME.pub` holds a worker's
/// Ed25519 public key, `NAME.key` its private key (written once for the worker, mode 0600: copy it to
/// the worker's machine and delete it here), `NAME.revoked` marks a revoked identity.
///
/// The server reads these files for every signed message rather than once at start, so
/// `lte keys revoke NAME` takes effect from that worker's next message, mid-run; a few small file
/// reads per message cost nothing next to a round.
public struct KeyStore: IdentityVerifier {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// `RUN/keys`.
    public static func location(inRun run: URL) -> URL { run.appendingPathComponent("keys") }

    /// Whether a run admits workers by identity: it has a keys directory with at least one key.
    public static func isInUse(inRun run: URL) -> Bool { !((try? KeyStore(directory: location(inRun: run)).names()) ?? []).isEmpty }

    public func publicKeyURL(_ name: String) -> URL { directory.appendingPathComponent("\(name).pub") }
    public func privateKeyURL(_ name: String) -> URL { directory.appendingPathComponent("\(name).key") }
    func revokedURL(_ name: String) -> URL { directory.appendingPathComponent("\(name).revoked") }

    /// Every identity ever added, revoked ones included, sorted.
    public func names() throws -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".pub") }.map { String($0.dropLast(4)) }.sorted()
    }

    public func isRevoked(_ name: String) -> Bool { FileManager.default.fileExists(atPath: revokedURL(name).path) }

    /// Makes a new identity: writes NAME.pub and NAME.key; refuses a name already used (even revoked:
    /// a revoked name stays revoked, so a captured key can never come back under it).
    @discardableResult
    public func add(_ name: String) throws -> IdentityKey {
        try Self.checkName(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard !FileManager.default.fileExists(atPath: publicKeyURL(name).path) else {
            throw LTEError("identity \(name) already exists in \(directory.path)\(isRevoked(name) ? " (revoked; a revoked name is never reused)" : "")")
        }
        let key = IdentityKey()
        let privatePath = privateKeyURL(name).path
        guard FileManager.default.createFile(atPath: privatePath, contents: Data((IdentityKeyFile.hex(key.rawBytes) + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw LTEError("cannot write \(privatePath)")
        }
        try Data((IdentityKeyFile.hex(key.publicKey.rawRepresentation) + "\n").utf8).write(to: publicKeyURL(name))
        return key
    }

    /// Revokes an identity: the server refuses its next message and hands its heads on.
    public func revoke(_ name: String) throws {
        try Self.checkName(name)
        guard FileManager.default.fileExists(atPath: publicKeyURL(name).path) else {
            throw LTEError("no identity \(name) in \(directory.path) (known: \(((try? names()) ?? []).joined(separator: ", ")))")
        }
        try Data("revoked \(ISO8601DateFormatter().string(from: Date()))\n".utf8).write(to: revokedURL(name))
        try? FileManager.default.removeItem(at: privateKeyURL(name))
    }

    public func status(of worker: String) -> IdentityStatus {
        guard MergeHistory.isValidWorkerName(worker),
              let bytes = try? IdentityKeyFile.read(publicKeyURL(worker).path),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else { return .unknown }
        return isRevoked(worker) ? .revoked : .known(key)
    }

    static func checkName(_ name: String) throws {
        guard MergeHistory.isValidWorkerName(name) else {
            throw LTEError("identity name must be 1–\(MergeHistory.maxWorkerNameBytes) letters, digits, '.', '_' or '-' (got \(name.debugDescription)); it is also the worker's name")
        }
    }
}
