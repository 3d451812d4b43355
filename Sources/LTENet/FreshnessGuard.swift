import Foundation

/// Refuses a captured hello sent again, in any later round (issue 20, item 14).
///
/// A hello names no round, so the round-keyed `ReplayGuard` can only remember it for the server's
/// round at the time: once the round moved on, a hello captured earlier was new again and was
/// answered with a full welcome. Instead each hello carries the time it was sent under the MAC; the
/// guard refuses a time outside ±`window` of its own clock, and remembers every (peer, nonce) it
/// admitted until its time has left the window. A copy is then either inside the window (its nonce is
/// remembered) or outside it (too old): refused both ways. The window only has to cover clock skew
/// between machines and the time a hello spends on the wire.
public final class FreshnessGuard: @unchecked Sendable {
    public let window: Duration
    /// Hellos one peer may have inside the window: a worker sends one per (re)join.
    public let maxPerPeer: Int

    private var seen: [String: [UInt64: Int64]] = [:]  // peer → nonce → sent at (ms)
    private let lock = NSLock()

    public init(window: Duration = .seconds(300), maxPerPeer: Int = 1024) {
        precondition(window > .zero && maxPerPeer > 0)
        self.window = window
        self.maxPerPeer = maxPerPeer
    }

    /// Milliseconds since 1970: the clock hellos are stamped with.
    public static func nowMilliseconds() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    /// Admits a message stamped `sentAt` (ms since 1970) with `nonce` once, or throws `WireError(.replayed)`.
    public func admit(peer: String, sentAt: UInt64, nonce: UInt64, now: UInt64 = FreshnessGuard.nowMilliseconds()) throws {
        let windowMs = Int64(window.components.seconds * 1000 + window.components.attoseconds / 1_000_000_000_000_000)
        let sent = Int64(clamping: sentAt), current = Int64(clamping: now)
        let (age, overflow) = current.subtractingReportingOverflow(sent)
        guard !overflow, abs(age) <= windowMs else {
            throw WireError(.replayed, "message from '\(WireText.quote(peer))' was sent \(overflow ? "at an impossible time" : String(format: "%.1f s %@", Double(abs(age)) / 1000, age > 0 ? "ago" : "in the future")), outside the ±\(windowMs / 1000) s freshness window (replay or clock skew)")
        }
        lock.lock()
        defer { lock.unlock() }
        var nonces = (seen[peer] ?? [:]).filter { current - $0.value <= windowMs }
        if nonces[nonce] != nil {
            throw WireError(.replayed, "message from '\(WireText.quote(peer))' nonce \(nonce) was already received (replay)")
        }
        guard nonces.count < maxPerPeer else {
            throw WireError(.replayed, "'\(WireText.quote(peer))' sent over \(maxPerPeer) messages within \(windowMs / 1000) s")
        }
        nonces[nonce] = sent
        seen[peer] = nonces
        // Peers whose every hello has left the window are dropped, so memory follows recent traffic.
        if seen.count > 4 * maxPerPeer { seen = seen.filter { $0.value.values.contains { current - $0 <= windowMs } } }
    }
}
