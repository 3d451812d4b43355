import CNNG

/// Connections a listener dropped before they became pipes, by nng's reason (its listener statistics).
///
/// A tls+tcp:// connection is accepted only after its TLS handshake and nng's protocol header; one
/// that fails either never reaches the socket's pipe callbacks, so counting is all nng 1.5 offers —
/// no peer address, no certificate, only the category of the error (`nni_listener_bump_error`).
/// The server logs the counts as they grow so that refused peers do not pass in silence. They are a
/// lower bound: nng counts a failed handshake only when its listener is waiting for the next
/// connection (`tlstran_pipe_nego_cb`), so of a burst of failures at once some go uncounted.
public struct AcceptFailures: Equatable, Sendable {
    /// `NNG_EPEERAUTH` or `NNG_ECRYPTO`: the TLS handshake failed, refused by either side — nng does
    /// not say which (a client certificate not signed by the CA or none, a client that refused this
    /// server's certificate, a key that does not match its certificate, a client not speaking TLS).
    public var authentication = 0
    /// `NNG_EPROTO`: not nng's protocol header (e.g. a TLS client at a plain tcp:// listener, or junk).
    public var protocolErrors = 0
    /// Dropped by the peer mid-handshake (`NNG_ECONNRESET`, `NNG_ECONNABORTED`).
    public var disconnects = 0
    public var timeouts = 0
    /// Anything else: a peer's close mid-handshake (`NNG_ECLOSED`, also an honest client exiting at the
    /// wrong moment), over TLS mostly a client that refused this server's certificate or name.
    public var other = 0

    public var total: Int { authentication + protocolErrors + disconnects + timeouts + other }

    public static func - (a: Self, b: Self) -> Self {
        AcceptFailures(authentication: a.authentication - b.authentication, protocolErrors: a.protocolErrors - b.protocolErrors,
                       disconnects: a.disconnects - b.disconnects, timeouts: a.timeouts - b.timeouts, other: a.other - b.other)
    }

    /// The counts of `listener` now; nil when libnng was built without statistics.
    static func read(_ listener: nng_listener) -> AcceptFailures? {
        var all: OpaquePointer? = nil
        guard nng_stats_get(&all) == 0, let all else { return nil }
        defer { nng_stats_free(all) }
        guard let mine = nng_stat_find_listener(all, listener) else { return nil }
        func count(_ name: String) -> Int { nng_stat_find(mine, name).map { Int(clamping: nng_stat_value($0)) } ?? 0 }
        return AcceptFailures(authentication: count("auth"), protocolErrors: count("proto"), disconnects: count("disconnect"),
                              timeouts: count("timeout"), other: count("other"))
    }

    /// "2 failed the TLS handshake (…); 1 ended otherwise (…)" — only the categories that occurred.
    public var summary: String {
        let parts: [(Int, String)] = [
            (authentication, "failed the TLS handshake (a client certificate not signed by this server's --tls-ca or none, a client that does not trust this server's certificate, a key that does not match its certificate, or a client not speaking TLS)"),
            (other, "ended otherwise (a client that closed mid-handshake, e.g. on exit, or over TLS one that refused this server's certificate or name)"),
            (protocolErrors, "did not speak nng's protocol (a TLS client at a plain tcp:// listener, or junk)"),
            (disconnects, "were closed by the peer mid-handshake"),
            (timeouts, "timed out in the handshake"),
        ]
        return parts.filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: "; ")
    }
}
