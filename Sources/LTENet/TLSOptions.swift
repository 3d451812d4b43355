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

    static func readPEM(_ path: String, _ what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LTEError("TLS \(what) file \(path): cannot read")
        }
        guard let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN ") else {
            throw LTEError("TLS \(what) file \(path) is not PEM")
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
