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
    /// Name the server's certificate must carry (dialers only); defaults to the URL's host.
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

    /// An nng TLS config for one side; the caller frees it after handing it to an endpoint.
    func makeConfig(server: Bool, url: String) throws -> OpaquePointer {
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
            try NNGError.check(nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED), "TLS auth mode")
            try NNGError.check(nng_tls_config_ca_chain(cfg, ca, nil), "TLS CA chain from \(caFile)")
            try NNGError.check(nng_tls_config_own_cert(cfg, cert, key, keyPassword), "TLS certificate \(certFile) with key \(keyFile)")
            if !server, let name = serverName ?? Self.host(of: url) {
                try NNGError.check(nng_tls_config_server_name(cfg, name), "TLS server name \(name)")
            }
        } catch {
            nng_tls_config_free(cfg)
            throw error
        }
        return cfg
    }

    /// Reads the three files and checks that each is whole PEM of the right kind, so a wrong or cut
    /// file is named at startup instead of surfacing as nng's "Cryptographic error" or a handshake
    /// that times out.
    public func validate() throws {
        _ = try Self.readPEM(certFile, "certificate", expecting: "CERTIFICATE")
        _ = try Self.readPEM(keyFile, "private key", expecting: "PRIVATE KEY")
        _ = try Self.readPEM(caFile, "CA certificate", expecting: "CERTIFICATE")
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
