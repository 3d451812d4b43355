import Foundation

/// A throwaway certificate authority made with the `openssl` command at test time; it issues leaf
/// certificates (EC P-256, one day) valid for 127.0.0.1 and localhost into its directory. Shared by
/// the TLS tests of LTENet and of the CLI (a test target cannot read another's files).
public struct TestCA {
    public static let openssl = "/usr/bin/openssl"

    /// Why the TLS tests must be skipped on this machine, or nil when openssl is there.
    public static var missingOpenSSL: String? {
        FileManager.default.isExecutableFile(atPath: openssl)
            ? nil : "\(openssl) is not installed: cannot make test certificates for the TLS tests"
    }

    public let dir: URL
    public let name: String
    public var certFile: String { dir.appendingPathComponent("\(name).pem").path }
    public var keyFile: String { dir.appendingPathComponent("\(name).key").path }

    public init(_ name: String, in dir: URL) throws {
        self.dir = dir
        self.name = name
        try Self.run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=LTE test \(name)"])
    }

    /// The names the leaves carry unless told otherwise. A DNS entry of 127.0.0.1 too, for tests
    /// that dial it by a name check (`--tls-server-name 127.0.0.1`): nng's mbedTLS 2.28 matches DNS entries only.
    public static let loopbackNames = "DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1"

    /// A leaf certificate and its key, signed by this CA, carrying `subjectAltName`.
    public func issue(_ leaf: String, subjectAltName: String = loopbackNames) throws -> (cert: String, key: String) {
        let key = dir.appendingPathComponent("\(leaf).key").path
        let csr = dir.appendingPathComponent("\(leaf).csr").path
        let cert = dir.appendingPathComponent("\(leaf).pem").path
        let ext = dir.appendingPathComponent("\(leaf).ext")
        try "subjectAltName=\(subjectAltName)\n".write(to: ext, atomically: true, encoding: .utf8)
        try Self.run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"])
        try Self.run(["x509", "-req", "-in", csr, "-CA", certFile, "-CAkey", keyFile, "-CAcreateserial",
                      "-out", cert, "-days", "1", "-extfile", ext.path])
        return (cert, key)
    }

    private static func run(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: openssl)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "openssl", code: Int(p.terminationStatus), userInfo: [
                NSLocalizedDescriptionKey: "openssl \(args.joined(separator: " ")): \(String(decoding: message, as: UTF8.self))"])
        }
    }
}
