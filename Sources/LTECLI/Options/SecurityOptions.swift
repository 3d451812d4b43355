import ArgumentParser
import LTEBase
import LTENet

/// Options every networked command shares: authentication and TLS.
struct SecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Shared secret file (hex or raw, ≥ 16 bytes): every message is HMAC-SHA256 authenticated.", valueName: "file"))
    var secretFile: String?
    @Option(help: ArgumentHelp("TLS certificate (PEM) for tls+tcp:// addresses.", valueName: "file")) var tlsCert: String?
    @Option(help: ArgumentHelp("TLS private key (PEM).", valueName: "file")) var tlsKey: String?
    @Option(help: ArgumentHelp("TLS CA certificate (PEM) that peers must be signed by.", valueName: "file")) var tlsCa: String?
    @Option(help: ArgumentHelp("Name the server's certificate must carry as a DNS entry of its subjectAltName (dialing only; default: the address's host name, none for an IP address).", valueName: "name"))
    var tlsServerName: String?

    func codec(maxMessageBytes: Int = 1 << 30, signer: IdentityKey? = nil, verifier: (any IdentityVerifier)? = nil) throws -> WireCodec {
        WireCodec(secret: try secretFile.map { try SharedSecret.load(contentsOf: $0) }, maxMessageBytes: maxMessageBytes,
                  signer: signer, verifier: verifier)
    }

    func tls(for address: String) throws -> TLSOptions? {
        guard address.hasPrefix("tls+tcp://") else {
            if tlsCert != nil || tlsKey != nil || tlsCa != nil || tlsServerName != nil {
                throw LTEError("--tls-cert/--tls-key/--tls-ca/--tls-server-name need a tls+tcp:// address (got \(address))")
            }
            return nil
        }
        guard let tlsCert, let tlsKey, let tlsCa else { throw LTEError("a tls+tcp:// address needs --tls-cert, --tls-key and --tls-ca") }
        let options = TLSOptions(certFile: tlsCert, keyFile: tlsKey, caFile: tlsCa, serverName: tlsServerName)
        try options.validate()
        return options
    }
}
