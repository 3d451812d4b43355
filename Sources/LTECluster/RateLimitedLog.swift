import Foundation

/// Log lines a peer can provoke at will (frames that fail to decode), at most one per `interval`:
/// each line says how many were left out since the last, so a flood of garbage is still visible in
/// the log but cannot fill the disk or slow the server down.
final class RateLimitedLog: @unchecked Sendable {
    private let interval: Duration
    private let write: (String) -> Void
    private let clock = ContinuousClock()
    private let lock = NSLock()
    private var last: ContinuousClock.Instant?
    private var suppressed = 0

    init(interval: Duration, write: @escaping (String) -> Void) { self.interval = interval; self.write = write }

    func note(_ line: String) {
        lock.lock()
        let now = clock.now
        guard last.map({ now - $0 >= interval }) ?? true else { suppressed += 1; lock.unlock(); return }
        let skipped = suppressed
        last = now; suppressed = 0
        lock.unlock()
        write(skipped > 0 ? "\(line) (and \(skipped) more like it since the last such line)" : line)
    }
}
