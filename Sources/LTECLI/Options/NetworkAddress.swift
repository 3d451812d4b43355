import LTEBase

/// Addresses given on the command line, checked before anything is started or written: nng would
/// take port 99999 and fail later with a less helpful message, or not at all until a peer dials.
enum NetworkAddress {
    /// Throws when a tcp:// or tls+tcp:// address has no port or one outside 0–65535 (0: any free
    /// port, for listening only).
    static func check(_ address: String, flag: String, listening: Bool) throws {
        guard let scheme = ["tcp://", "tls+tcp://"].first(where: address.hasPrefix) else { return }
        let rest = address.dropFirst(scheme.count)
        guard let colon = rest.lastIndex(of: ":"), !rest[..<colon].isEmpty || listening else {
            throw LTEError("\(flag) \(address): expected \(scheme)HOST:PORT")
        }
        let digits = rest[rest.index(after: colon)...]
        guard let port = Int(digits), port >= (listening ? 0 : 1), port <= 65535 else {
            throw LTEError("\(flag) \(address): port \(digits) is not a TCP port (\(listening ? 0 : 1)–65535)")
        }
    }
}
