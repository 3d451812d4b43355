import CNNG
import Foundation
import LTEBase

/// Certificates for `tls+tcp://` addresses: mutual TLS, both sides present a certificate signed by
/// the run's CA and both require the other's (`NNG_TLS_AUTH_MODE_REQUIRED`), so only holders of a
/// CA-signed key can connect at all — the shared-secret MAC then authenticates each message.
///
/// Files are PEM. They are read here, in Swift, so a missing or unreadable file is reported by name
/// instead of as nng's bare "Cryptographic error".
public struct TLSOptions: Equatable, Sendable {
    public var certFile: String
    public var keyFile: String
    public var caFile: String
    /// Name the server's certificate must carry (dialers only, `--tls-server-name`); defaults to the
    /// URL's host when that is a name, and to no name check when it is an IP address (`expectedServerName`).
    public var serverName: String?
    public var keyPassword: String?

    public init(certFile: String, keyFile: String, caFile: String, serverName: String? = nil, keyPassword: String? = nil) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.caFile = caFile
        self.serverName = serverName
        self.keyPassword = keyPassword
    }

    /// The TLS engine libnng was built with ("mbed" in Debian's libnng1 1.5.2, which links
    /// libmbedtls 2.28: TLS 1.2), or "none" when it was built without TLS.
    public static var engineName: String { String(cString: nng_tls_engine_name()) }
    public static var engineDescription: String { String(cString: nng_tls_engine_description()) }

    /// What a config checks of the peer. Everything by default; `ConnectionDiagnosis` turns single
    /// checks off to find which one a failed handshake tripped over.
    struct PeerCheck: Equatable {
        var verifyPeer = true
        var checkName = true
        var presentOwnCertificate = true
        static let full = PeerCheck()
    }

    /// An nng TLS config for one side; the caller frees it after handing it to an endpoint.
    func makeConfig(server: Bool, url: String, check: PeerCheck = .full) throws -> OpaquePointer {
        let cert = try Self.readPEM(certFile, "certificate")
        let key = try Self.readPEM(keyFile, "private key")
        let ca = try Self.readPEM(caFile, "CA certificate")
        var cfg: OpaquePointer? = nil
        let rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)
        if rv == NNGError.code(NNG_ENOTSUP) {
            throw LTEError("\(url): this libnng has no TLS support (engine: \(Self.engineName)); install a build with mbedTLS or use tcp:// with a shared secret")
        }
        try NNGError.check(rv, "nng_tls_config_alloc")
        guard let cfg else { throw NNGError(code: NNGError.code(NNG_ENOMEM), operation: "nng_tls_config_alloc") }
        do {
            let mode = check.verifyPeer ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE
            try NNGError.check(nng_tls_config_auth_mode(cfg, mode), "TLS auth mode")
            // mbedTLS parses the PEM here; what it refuses is whole PEM whose contents are damaged.
            let caLoaded = nng_tls_config_ca_chain(cfg, ca, nil)
            if caLoaded != 0 {
                throw LTEError("TLS CA certificate file \(caFile) cannot be loaded (\(NNGError(code: caLoaded, operation: "").reason)): its certificate is damaged or not X.509")
            }
            if check.presentOwnCertificate {
                let loaded = nng_tls_config_own_cert(cfg, cert, key, keyPassword)
                if loaded != 0 {
                    throw LTEError("TLS certificate \(certFile) with key \(keyFile) cannot be loaded (\(NNGError(code: loaded, operation: "").reason)): one of them is damaged, the key needs a password, or its type is one mbedTLS does not support")
                }
            }
            if !server, check.checkName, let name = expectedServerName(url) {
                try NNGError.check(nng_tls_config_server_name(cfg, name), "TLS server name \(name)")
            }
        } catch {
            nng_tls_config_free(cfg)
            throw error
        }
        return cfg
    }

    /// The name a dialer checks the server's certificate against: `serverName` if given, else the
    /// URL's host — unless the host is an IP address. nng's TLS engine (mbedTLS 2.28) matches the
    /// name against the DNS entries of the certificate's subjectAltName only, so a certificate made
    /// for `IP:127.0.0.1` could never match; dialled by address, the server is instead held to a
    /// certificate signed by the CA in `caFile` (and every message to the run's MAC). nng 1.5 gives
    /// no access to the peer's certificate, so the IP entry cannot be checked here either.
    func expectedServerName(_ url: String) -> String? {
        if let serverName { return serverName }
        guard let host = Self.host(of: url), !Self.isIPAddress(host) else { return nil }
        return host
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Reads the three files and checks that each is whole PEM of the right kind, so a wrong or cut
    /// file is named at startup instead of surfacing as nng's "Cryptographic error" or a handshake
    /// that times out.
    public func validate() throws {
        _ = try Self.readPEM(certFile, "certificate", expecting: "CERTIFICATE")
        _ = try Self.readPEM(keyFile, "private key", expecting: "PRIVATE KEY")
        _ = try Self.readPEM(caFile, "CA certificate", expecting: "CERTIFICATE")
        try checkKeyMatchesCertificate()
    }

    /// nng 1.5 takes a key that does not belong to its certificate without a word, and every
    /// handshake then fails on the peer's side. So the pair is tried once at startup: a handshake
    /// with itself over loopback, this certificate and key serving, a client that checks nothing
    /// but the signature the key makes over the handshake — which fails exactly when the key is not
    /// the certificate's.
    func checkKeyMatchesCertificate(timeout: Duration = .seconds(10)) throws {
        let own = PeerCheck(verifyPeer: false, checkName: false, presentOwnCertificate: true)
        let anonymous = PeerCheck(verifyPeer: false, checkName: false, presentOwnCertificate: false)
        let listenConfig = try makeConfig(server: true, url: "tls+tcp://127.0.0.1:0", check: own)
        defer { nng_tls_config_free(listenConfig) }
        let dialConfig = try makeConfig(server: false, url: "tls+tcp://127.0.0.1:0", check: anonymous)
        defer { nng_tls_config_free(dialConfig) }
        var socket = nng_socket()
        try NNGError.check(nng_rep0_open(&socket), "nng_rep0_open")
        defer { nng_close(socket) }
        var listener = nng_listener()
        try NNGError.check(nng_listener_create(&listener, socket, "tls+tcp://127.0.0.1:0"), "check TLS key: listen on loopback")
        try NNGError.check(nng_listener_set_ptr(listener, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer(listenConfig)), "check TLS key")
        try NNGError.check(nng_listener_start(listener, 0), "check TLS key: listen on loopback")
        var port: Int32 = 0
        try NNGError.check(nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port), "check TLS key: bound port")
        switch DialProbe.dial("tls+tcp://127.0.0.1:\(port)", tlsConfig: dialConfig, timeout: timeout) {
        case .connected: return
        case .noAnswer: throw LTEError("TLS key \(keyFile) could not be checked against certificate \(certFile): a loopback handshake with them did not finish in \(timeout)")
        case .failed(let code):
            throw LTEError("TLS key \(keyFile) does not match certificate \(certFile): a handshake with them fails (\(NNGError(code: code, operation: "").reason)); pass the key the certificate was issued for")
        }
    }

    static func readPEM(_ path: String, _ what: String, expecting label: String? = nil) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LTEError("TLS \(what) file \(path): cannot read")
        }
        guard let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN ") else {
            throw LTEError("TLS \(what) file \(path) is not PEM")
        }
        // Every block must be whole: BEGIN X, base64, END X. A truncated file lacks its END line.
        var blocks = 0, labels: [String] = []
        var rest = Substring(text)
        while let begin = rest.range(of: "-----BEGIN ") {
            guard let close = rest[begin.upperBound...].range(of: "-----") else { throw LTEError("TLS \(what) file \(path) is truncated (a BEGIN line is cut)") }
            let name = String(rest[begin.upperBound..<close.lowerBound])
            guard let end = rest[close.upperBound...].range(of: "-----END \(name)-----") else {
                throw LTEError("TLS \(what) file \(path) is truncated or damaged: \"BEGIN \(name)\" has no matching END line")
            }
            let body = rest[close.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
            guard !body.isEmpty, Data(base64Encoded: String(body)) != nil || body.contains(":") else {
                throw LTEError("TLS \(what) file \(path) is damaged: the \(name) block is not base64")
            }
            blocks += 1; labels.append(name)
            rest = rest[end.upperBound...]
        }
        if let label, !labels.contains(where: { $0.hasSuffix(label) }) {
            throw LTEError("TLS \(what) file \(path) holds \(labels.joined(separator: ", ")), not a \(label)")
        }
        return text
    }

    /// "tls+tcp://host:port" → "host" ("[::1]:5555" → "::1").
    static func host(of url: String) -> String? {
        guard let scheme = url.range(of: "://") else { return nil }
        var rest = url[scheme.upperBound...]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            return String(rest[rest.index(after: rest.startIndex)..<close])
        }
        if let colon = rest.lastIndex(of: ":") { rest = rest[..<colon] }
        return rest.isEmpty || rest == "*" ? nil : String(rest)
    }
}
