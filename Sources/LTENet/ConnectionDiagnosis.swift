import CNNG
import Foundation

/// Why a server cannot be reached, in words a user can act on (issue 20, item 8).
///
/// A dialing socket retries in the background and its requests merely time out, whatever the cause:
/// nothing listening, a server that does not speak TLS, or a TLS handshake one side refused. So after
/// a failed request the caller asks here: a few one-off dials (`DialProbe`), each with one check turned
/// off, tell the cases apart. nng 1.5 reports only coarse codes (mbedTLS's certificate verdicts all
/// become `NNG_ECRYPTO`; a server that refused the client's certificate shows as `NNG_ECRYPTO` or
/// `NNG_ECONNSHUT`), so the probes, not the codes, carry the diagnosis:
///
/// | full dial | no peer check | no name check | plain tcp:// | finding |
/// |---|---|---|---|---|
/// | fails | connects | connects | – | the server's certificate lacks the name |
/// | fails | connects | fails | – | the server's certificate is not signed by our CA (or expired) |
/// | fails | fails | – | connects | the server does not speak TLS |
/// | fails | fails | – | fails | the server refused our certificate |
///
/// Each probe is a real connection the server sees (and logs, if its handshake fails); they run only
/// after a request failed, so at most a handful per send timeout, never in a tight loop.
public enum ConnectionDiagnosis {
    public struct Finding: Equatable, Sendable {
        /// A sentence that completes "cannot reach the server at ADDR: …".
        public let reason: String
        /// True when retrying cannot help (a certificate or scheme problem); false for "nothing
        /// listens yet", which a server that starts later cures.
        public let isPermanent: Bool
    }

    /// Why `url` cannot be reached with `tls`, or nil when a dial succeeds now (the trouble lies
    /// elsewhere, or passed).
    public static func diagnose(_ url: String, tls: TLSOptions?, timeout: Duration = .seconds(5)) -> Finding? {
        let full: DialProbe.Outcome
        do { full = try probe(url, tls, .full, timeout) } catch { return Finding(reason: "\(error)", isPermanent: true) }
        switch full {
        case .connected: return nil
        case .noAnswer:
            return Finding(reason: "a connection attempt got no answer within \(timeout) (a host that is down, or a firewall dropping packets)", isPermanent: false)
        case .failed(let code):
            if code == NNGError.code(NNG_ECONNREFUSED) { return nothingListens }
            if code == NNGError.code(NNG_EADDRINVAL) {
                return Finding(reason: "the address cannot be resolved or used (\(reasonText(code)))", isPermanent: true)
            }
            let handshake = [NNG_ECRYPTO, NNG_EPEERAUTH, NNG_ECONNSHUT, NNG_ECLOSED, NNG_ECONNRESET].map(NNGError.code).contains(code)
            guard handshake else { return Finding(reason: reasonText(code), isPermanent: false) }
            guard let tls else { return plainFailure(url, code) }
            return tlsFailure(url, tls, code, timeout)
        }
    }

    static let nothingListens = Finding(reason: "nothing listens there (connection refused); is `lte server` running at that address?", isPermanent: false)

    /// A plain dial closed in nng's handshake: most likely a TLS listener, but a server dying at that
    /// moment looks the same, so retrying stays allowed (the reason is given when the retries run out).
    private static func plainFailure(_ url: String, _ code: Int32) -> Finding {
        let tlsURL = url.replacingOccurrences(of: "tcp://", with: "tls+tcp://")
        return Finding(reason: "the server closed the connection during nng's handshake (\(reasonText(code))): if it listens with TLS, dial \(tlsURL) with --tls-cert, --tls-key and --tls-ca", isPermanent: false)
    }

    private static func tlsFailure(_ url: String, _ tls: TLSOptions, _ code: Int32, _ timeout: Duration) -> Finding {
        let seen = "nng: \(reasonText(code))"
        let trustingAnyServer = TLSOptions.PeerCheck(verifyPeer: false, checkName: false, presentOwnCertificate: true)
        let untrusting = try? probe(url, tls, trustingAnyServer, timeout)
        // A server that went away between the probes (killed, restarting) is not a certificate problem.
        if untrusting == .failed(NNGError.code(NNG_ECONNREFUSED)) || untrusting == .noAnswer { return nothingListens }
        if untrusting == .connected {
            // The server accepts this client; it is this client that refuses the server.
            if let name = tls.expectedServerName(url),
               (try? probe(url, tls, TLSOptions.PeerCheck(verifyPeer: true, checkName: false), timeout)) == .connected {
                return Finding(reason: "the server's certificate does not carry the name \(name) (\(seen)); it must be a DNS entry of its subjectAltName (nng's mbedTLS does not match IP entries): dial a name it carries, or pass --tls-server-name with one", isPermanent: true)
            }
            return Finding(reason: "the server's certificate is not signed by the CA in --tls-ca (\(tls.caFile)), or it has expired (\(seen))", isPermanent: true)
        }
        let plainURL = url.replacingOccurrences(of: "tls+tcp://", with: "tcp://")
        let plain = try? probe(plainURL, nil, .full, timeout)
        if plain == .failed(NNGError.code(NNG_ECONNREFUSED)) || plain == .noAnswer { return nothingListens }
        if plain == .connected {
            return Finding(reason: "the server does not speak TLS (\(seen)): it listens on \(plainURL); dial that without --tls-cert, --tls-key and --tls-ca", isPermanent: true)
        }
        return Finding(reason: "the server refused this client's certificate \(tls.certFile) (\(seen)): it is not signed by the CA the server trusts (the server's --tls-ca), or it has expired, or the server's own key does not match its certificate", isPermanent: true)
    }

    private static func probe(_ url: String, _ tls: TLSOptions?, _ check: TLSOptions.PeerCheck, _ timeout: Duration) throws -> DialProbe.Outcome {
        guard let tls else { return DialProbe.dial(url, tlsConfig: nil, timeout: timeout) }
        let config = try tls.makeConfig(server: false, url: url, check: check)
        defer { nng_tls_config_free(config) }
        return DialProbe.dial(url, tlsConfig: config, timeout: timeout)
    }

    private static func reasonText(_ code: Int32) -> String { NNGError(code: code, operation: "").reason }
}
