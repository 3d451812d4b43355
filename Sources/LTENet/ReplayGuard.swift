import Foundation

/// Refuses a captured message sent again (DESIGN.md §4: "round/nonce against replay").
///
/// The MAC proves a frame came from a holder of the secret, not that it is new. Each worker message
/// carries a random 64-bit nonce (see `freshNonce()`), and the guard remembers the (peer, round,
/// nonce) triples it admitted for the last `roundWindow` rounds of each peer; anything older than
/// that window is refused as stale, since it can no longer be told apart from a replay.
///
/// Nonces are random rather than a per-worker counter so a restarted worker needs no saved state.
/// Pass the message's own round for pushes; for a hello (which has no round) pass the server's
/// current round.
///
/// Note for the server: a `.repeated` push is either an attack or the same request sent again by
/// the transport (nng REQ resends byte-identical frames after a reconnect, see `NNGRequestSocket`).
/// Either way its content is identical to one already admitted, so answering it like the original
/// (idempotent, DESIGN.md §4) is safe; it must simply never be counted twice.
public final class ReplayGuard: @unchecked Sendable {
    public enum Verdict: Equatable, Sendable {
        case fresh      // first sighting: admitted and remembered
        case repeated   // same (peer, round, nonce) seen before
        case stale      // round older than the window: cannot tell, refused
        case tooMany    // peer sent more messages for one round than any worker would
    }

    public let roundWindow: Int
    public let maxNoncesPerRound: Int

    private struct Peer {
        var highestRound = Int.min
        var nonces: [Int: Set<UInt64>] = [:]
    }

    private var peers: [String: Peer] = [:]
    private let lock = NSLock()

    public init(roundWindow: Int = 8, maxNoncesPerRound: Int = 4096) {
        precondition(roundWindow >= 0 && maxNoncesPerRound > 0)
        self.roundWindow = roundWindow
        self.maxNoncesPerRound = maxNoncesPerRound
    }

    /// A random nonce for an outgoing message.
    public static func freshNonce() -> UInt64 {
        var g = SystemRandomNumberGenerator()
        return g.next()
    }

    /// Classifies a message and remembers it if it is fresh.
    public func check(peer: String, round: Int, nonce: UInt64) -> Verdict {
        lock.lock()
        defer { lock.unlock() }
        var p = peers[peer] ?? Peer()
        if p.highestRound != Int.min, round < oldestRemembered(p.highestRound) { return .stale }
        var seen = p.nonces[round] ?? []
        if seen.contains(nonce) { return .repeated }
        if seen.count >= maxNoncesPerRound { return .tooMany }
        seen.insert(nonce)
        p.nonces[round] = seen
        if round > p.highestRound {
            p.highestRound = round
            let oldest = oldestRemembered(round)
            p.nonces = p.nonces.filter { $0.key >= oldest }
        }
        peers[peer] = p
        return .fresh
    }

    private func oldestRemembered(_ highest: Int) -> Int {
        let (r, overflow) = highest.subtractingReportingOverflow(roundWindow)
        return overflow ? Int.min : r
    }

    /// Admits a fresh message or throws `WireError(.replayed)` naming the peer, round and verdict.
    public func admit(peer: String, round: Int, nonce: UInt64) throws {
        let verdict = check(peer: peer, round: round, nonce: nonce)
        switch verdict {
        case .fresh: return
        case .repeated:
            throw WireError(.replayed, "message from '\(WireText.quote(peer))' round \(round) nonce \(nonce) was already received (replay)")
        case .stale:
            throw WireError(.replayed, "message from '\(WireText.quote(peer))' for round \(round) is older than the \(roundWindow)-round replay window")
        case .tooMany:
            throw WireError(.replayed, "'\(WireText.quote(peer))' sent over \(maxNoncesPerRound) messages for round \(round)")
        }
    }

    /// Drops everything remembered about a peer (e.g. when a worker is removed from the run).
    public func forget(peer: String) {
        lock.lock()
        peers[peer] = nil
        lock.unlock()
    }
}
