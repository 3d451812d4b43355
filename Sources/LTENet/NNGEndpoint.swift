import CNNG
import LTEBase

/// Settings shared by listeners and dialers.
enum NNGEndpoint {
    /// Slack on top of the largest frame for nng's own headers (REQ/REP prepend a 4-byte request
    /// id plus hop ids); `WireCodec` enforces the exact frame limit.
    static let headerAllowance = 256

    static func receiveLimit(_ maxMessageBytes: Int) -> Int {
        maxMessageBytes > Int.max - headerAllowance ? Int.max : maxMessageBytes + headerAllowance
    }

    /// Refuses a TLS URL without certificates and certificates on a URL that would ignore them:
    /// silently running in the clear because of a typo is the failure worth preventing.
    static func checkScheme(_ url: String, _ tls: TLSOptions?) throws {
        let isTLS = url.hasPrefix("tls+tcp://")
        if isTLS && tls == nil {
            throw LTEError("\(url): tls+tcp:// needs TLS options (certificate, key and CA files)")
        }
        if !isTLS && tls != nil {
            throw LTEError("\(url): TLS options given but the address is not tls+tcp://")
        }
        guard ["tcp://", "tls+tcp://", "ipc://", "inproc://"].contains(where: url.hasPrefix) else {
            throw LTEError("\(url): unsupported address; use tcp://host:port, tls+tcp://host:port or ipc:///path")
        }
    }
}
