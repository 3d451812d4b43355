import Foundation
import LTETestSupport

/// One synthetic data directory per test class, made with `lte data synth` on first use (a process
/// launch, so once, not per test) and removed when the class's tests are done (`remove(for:)`).
enum SynthesizedData {
    nonisolated(unsafe) private static var made: [ObjectIdentifier: URL] = [:]
    private static let lock = NSLock()

    static func directory(for owner: AnyClass) throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let url = made[ObjectIdentifier(owner)] { return url.path }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lte-cli-data-\(UUID().uuidString)")
        try LTEBinary.succeed(["data", "synth", "--out", url.path, "--bytes", "200000", "--seed", "3"])
        made[ObjectIdentifier(owner)] = url
        return url.path
    }

    static func remove(for owner: AnyClass) {
        lock.lock(); defer { lock.unlock() }
        if let url = made.removeValue(forKey: ObjectIdentifier(owner)) { try? FileManager.default.removeItem(at: url) }
    }
}
