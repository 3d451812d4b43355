import Foundation

/// Log lines a peer can provoke at will (frames that fail to decode), at most `burst` per `interval`:
/// the next line written after some were left out says how many, so a flood of garbage is still
/// visible in the log but cannot fill the disk or slow the server down, while a few refusals in a row
/// (a misconfigured worker's retries) each get their line.
final class RateLimitedLog: @unchecked Sendable {
    private let interval: Duration
    private let burst: Int
    private let write: (String) -> Void
    private let clock = ContinuousClock()
    private let lock = NSLock()
    private var windowStart: ContinuousClock.Instant?
    private var written = 0
    private var suppressed = 0

    init(interval: Duration, burst: Int = 5, write: @escaping (String) -> Void) {
        self.interval = interval; self.burst = max(1, burst); self.write = write
    }

    func note(_ line: String) {
        lock.lock()
        let now = clock.now
        if windowStart.map({ now - $0 >= interval }) ?? true { windowStart = now; written = 0 }
        guard written < burst else { suppressed += 1; lock.unlock(); return }
        written += 1
        let skipped = suppressed
        suppressed = 0
        lock.unlock()
        write(skipped > 0 ? "\(line) (and \(skipped) more like it left out of the log)" : line)
    }
}
