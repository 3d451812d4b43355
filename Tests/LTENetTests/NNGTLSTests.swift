import Foundation
import LTENet
import LTETestSupport
import XCTest

/// Mutual TLS over tls+tcp:// with throwaway certificates made by `openssl` at test time.
final class NNGTLSTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        if let why = TestCA.missingOpenSSL { throw XCTSkip(why) }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lte-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func testEngineIsPresent() {
        // Debian's libnng1 1.5.2 links libmbedtls: TLS is available ("mbed").
        XCTAssertNotEqual(TLSOptions.engineName, "none", "libnng was built without TLS: \(TLSOptions.engineDescription)")
    }

    func testMutualTLSRoundTrip() throws {
        let ca = try TestCA("ca", in: dir)
        let server = try ca.issue("server"), worker = try ca.issue("worker")
        let url = "tls+tcp://127.0.0.1:\(try NNGTestSupport.freePort())"
        let rep = try NNGReplySocket(listen: url, maxMessageBytes: 1 << 20, receiveTimeout: .seconds(10),
                                     tls: TLSOptions(certFile: server.cert, keyFile: server.key, caFile: ca.certFile))
        defer { rep.close() }
        let req = try NNGRequestSocket(dial: url, maxMessageBytes: 1 << 20, sendTimeout: .seconds(10), receiveTimeout: .seconds(10),
                                       tls: TLSOptions(certFile: worker.cert, keyFile: worker.key, caFile: ca.certFile))
        defer { req.close() }
        let codec = WireCodec(secret: WireFixtures.secret())
        let reply = Background { try codec.decode(req.request(codec.encode(WireFixtures.push))) }
        XCTAssertEqual(try codec.decode(rep.receive()), WireFixtures.push)
        try rep.send(codec.encode(WireFixtures.roundResult))
        XCTAssertEqual(try reply.wait(), WireFixtures.roundResult)
    }

    func testWrongCAOrNameIsRefused() throws {
        let ca = try TestCA("ca", in: dir), rogue = try TestCA("rogue", in: dir)
        let server = try ca.issue("server"), worker = try ca.issue("worker"), intruder = try rogue.issue("intruder")
        let url = "tls+tcp://127.0.0.1:\(try NNGTestSupport.freePort())"
        let rep = try NNGReplySocket(listen: url, maxMessageBytes: 4096, receiveTimeout: .milliseconds(1500),
                                     tls: TLSOptions(certFile: server.cert, keyFile: server.key, caFile: ca.certFile))
        defer { rep.close() }
        // A worker whose CA did not sign the server's certificate: the handshake fails, nothing is sent.
        let wrongTrust = try NNGRequestSocket(dial: url, maxMessageBytes: 4096, sendTimeout: .milliseconds(1500), receiveTimeout: .seconds(2),
                                              tls: TLSOptions(certFile: worker.cert, keyFile: worker.key, caFile: rogue.certFile))
        defer { wrongTrust.close() }
        let a = Background { try wrongTrust.request(Data("hello".utf8)) }
        // A worker with a certificate from another CA: the server requires a valid client certificate.
        let wrongCert = try NNGRequestSocket(dial: url, maxMessageBytes: 4096, sendTimeout: .milliseconds(1500), receiveTimeout: .seconds(2),
                                             tls: TLSOptions(certFile: intruder.cert, keyFile: intruder.key, caFile: ca.certFile))
        defer { wrongCert.close() }
        let b = Background { try wrongCert.request(Data("hello".utf8)) }
        // A worker expecting another server name: hostname verification refuses the server.
        let wrongName = try NNGRequestSocket(dial: url, maxMessageBytes: 4096, sendTimeout: .milliseconds(1500), receiveTimeout: .seconds(2),
                                             tls: TLSOptions(certFile: worker.cert, keyFile: worker.key, caFile: ca.certFile, serverName: "elsewhere.example"))
        defer { wrongName.close() }
        let c = Background { try wrongName.request(Data("hello".utf8)) }
        assertNNGError(try rep.receive(), "no request reaches the server") { $0.isTimeout }
        assertNNGError(try a.wait(), "handshake never completes") { $0.isTimeout || $0.isConnectionReset }
        assertNNGError(try b.wait(), "handshake never completes") { $0.isTimeout || $0.isConnectionReset }
        assertNNGError(try c.wait(), "handshake never completes") { $0.isTimeout || $0.isConnectionReset }
    }

    func testBadCertificateFilesAreNamed() throws {
        let ca = try TestCA("ca", in: dir)
        let server = try ca.issue("server")
        let url = "tls+tcp://127.0.0.1:\(try NNGTestSupport.freePort())"
        let notPEM = dir.appendingPathComponent("junk.pem").path
        try "not a certificate".write(toFile: notPEM, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try NNGReplySocket(listen: url, maxMessageBytes: 1024,
                                                tls: TLSOptions(certFile: notPEM, keyFile: server.key, caFile: ca.certFile))) {
            XCTAssertEqual("\($0)", "TLS certificate file \(notPEM) is not PEM")
        }
        // A PEM file that is not a private key: mbedTLS refuses it, and the error names both files.
        // (A key that merely does not match the certificate is caught by `validate()`, which the
        // commands run at startup: nng 1.5.2 does not check the pair; see ConnectionDiagnosisTests.)
        XCTAssertThrowsError(try NNGReplySocket(listen: url, maxMessageBytes: 1024,
                                                tls: TLSOptions(certFile: server.cert, keyFile: ca.certFile, caFile: ca.certFile))) {
            XCTAssertTrue("\($0)".hasPrefix("TLS certificate \(server.cert) with key \(ca.certFile) cannot be loaded"), "\($0)")
        }
    }
}
