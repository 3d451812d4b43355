import Foundation
import LTENet
import LTETestSupport
import XCTest

/// Every way a dial can fail gets its own finding (issue 20, item 8), against real listeners over
/// loopback with certificates made by `openssl`; and the listener counts what it refused.
final class ConnectionDiagnosisTests: XCTestCase {
    var dir: URL!
    var ca: TestCA!
    var server: (cert: String, key: String)!
    var worker: (cert: String, key: String)!
    var sockets: [NNGReplySocket] = []

    override func setUpWithError() throws {
        if let why = TestCA.missingOpenSSL { throw XCTSkip(why) }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lte-tls-diagnosis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        ca = try TestCA("ca", in: dir)
        server = try ca.issue("server")
        worker = try ca.issue("worker")
    }

    override func tearDown() {
        sockets.forEach { $0.close() }
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    /// A listener on a free loopback port; `tls` nil listens on plain tcp://.
    func listen(_ tls: TLSOptions?) throws -> (socket: NNGReplySocket, port: Int) {
        let port = try NNGTestSupport.freePort()
        let socket = try NNGReplySocket(listen: "\(tls == nil ? "tcp" : "tls+tcp")://127.0.0.1:\(port)", maxMessageBytes: 4096,
                                        receiveTimeout: .seconds(10), tls: tls)
        sockets.append(socket)
        return (socket, port)
    }

    func options(_ leaf: (cert: String, key: String), trusting ca: TestCA, serverName: String? = nil) -> TLSOptions {
        TLSOptions(certFile: leaf.cert, keyFile: leaf.key, caFile: ca.certFile, serverName: serverName)
    }

    func diagnose(_ url: String, _ tls: TLSOptions?) throws -> ConnectionDiagnosis.Finding {
        try XCTUnwrap(ConnectionDiagnosis.diagnose(url, tls: tls, timeout: .seconds(5)), "the dial to \(url) succeeded")
    }

    func testAWorkingConnectionHasNoFinding() throws {
        let (_, port) = try listen(options(server, trusting: ca))
        XCTAssertNil(ConnectionDiagnosis.diagnose("tls+tcp://127.0.0.1:\(port)", tls: options(worker, trusting: ca)))
    }

    func testServerCertificateFromAnotherCA() throws {
        let rogue = try TestCA("rogue", in: dir)
        let (socket, port) = try listen(options(server, trusting: ca))
        let finding = try diagnose("tls+tcp://127.0.0.1:\(port)", options(worker, trusting: rogue))
        XCTAssertTrue(finding.reason.hasPrefix("the server's certificate is not signed by the CA in --tls-ca (\(rogue.certFile))"), finding.reason)
        XCTAssertTrue(finding.isPermanent)
        XCTAssertGreaterThan(try XCTUnwrap(socket.acceptFailures).total, 0, "the listener counted nothing")
    }

    func testClientCertificateFromAnotherCA() throws {
        let rogue = try TestCA("rogue", in: dir)
        let intruder = try rogue.issue("intruder")
        let (socket, port) = try listen(options(server, trusting: ca))
        let finding = try diagnose("tls+tcp://127.0.0.1:\(port)", options(intruder, trusting: ca))
        XCTAssertTrue(finding.reason.hasPrefix("the server refused this client's certificate \(intruder.cert)"), finding.reason)
        XCTAssertTrue(finding.isPermanent)
        XCTAssertGreaterThan(try XCTUnwrap(socket.acceptFailures).authentication, 0, "the listener counted no failed handshake")
    }

    func testServerNameMismatch() throws {
        let (_, port) = try listen(options(server, trusting: ca))
        let finding = try diagnose("tls+tcp://127.0.0.1:\(port)", options(worker, trusting: ca, serverName: "elsewhere.example"))
        XCTAssertTrue(finding.reason.hasPrefix("the server's certificate does not carry the name elsewhere.example"), finding.reason)
        XCTAssertTrue(finding.reason.contains("--tls-server-name"), finding.reason)
    }

    /// A certificate made for `IP:127.0.0.1` only: dialled by that address it works (no name check:
    /// mbedTLS 2.28 cannot match IP entries); asked to check the name 127.0.0.1, the finding says why not.
    func testCertificateWithOnlyAnIPAddressWorksWhenDialledByIt() throws {
        let ipOnly = try ca.issue("ip-only", subjectAltName: "IP:127.0.0.1")
        let (rep, port) = try listen(options(ipOnly, trusting: ca))
        let url = "tls+tcp://127.0.0.1:\(port)"
        XCTAssertNil(ConnectionDiagnosis.diagnose(url, tls: options(worker, trusting: ca)))
        let req = try NNGRequestSocket(dial: url, maxMessageBytes: 4096, sendTimeout: .seconds(10), receiveTimeout: .seconds(10),
                                       tls: options(worker, trusting: ca))
        defer { req.close() }
        let reply = Background { try req.request(Data("ping".utf8)) }
        XCTAssertEqual(try rep.receive(), Data("ping".utf8))
        try rep.send(Data("pong".utf8))
        XCTAssertEqual(try reply.wait(), Data("pong".utf8))
        let finding = try diagnose(url, options(worker, trusting: ca, serverName: "127.0.0.1"))
        XCTAssertTrue(finding.reason.hasPrefix("the server's certificate does not carry the name 127.0.0.1"), finding.reason)
    }

    func testTLSClientAtAPlainListenerAndPlainClientAtATLSListener() throws {
        let (plain, plainPort) = try listen(nil)
        let tlsFinding = try diagnose("tls+tcp://127.0.0.1:\(plainPort)", options(worker, trusting: ca))
        XCTAssertTrue(tlsFinding.reason.hasPrefix("the server does not speak TLS"), tlsFinding.reason)
        XCTAssertTrue(tlsFinding.reason.contains("tcp://127.0.0.1:\(plainPort)"), tlsFinding.reason)
        XCTAssertGreaterThan(try XCTUnwrap(plain.acceptFailures).protocolErrors, 0, "the plain listener counted no protocol error")

        let (_, tlsPort) = try listen(options(server, trusting: ca))
        let plainFinding = try diagnose("tcp://127.0.0.1:\(tlsPort)", nil)
        XCTAssertTrue(plainFinding.reason.contains("if it listens with TLS, dial tls+tcp://127.0.0.1:\(tlsPort)"), plainFinding.reason)
    }

    func testNothingListening() throws {
        let finding = try diagnose("tcp://127.0.0.1:\(try NNGTestSupport.freePort())", nil)
        XCTAssertTrue(finding.reason.hasPrefix("nothing listens there (connection refused)"), finding.reason)
        XCTAssertFalse(finding.isPermanent, "a server may still start there")
    }

    func testKeyThatDoesNotMatchItsCertificateIsRefusedAtStartup() throws {
        XCTAssertNoThrow(try options(worker, trusting: ca).validate())
        let mismatched = TLSOptions(certFile: worker.cert, keyFile: server.key, caFile: ca.certFile)
        XCTAssertThrowsError(try mismatched.validate()) {
            XCTAssertTrue("\($0)".hasPrefix("TLS key \(server.key) does not match certificate \(worker.cert)"), "\($0)")
        }
    }

    /// Whole PEM whose base64 is damaged passes the PEM check but not mbedTLS: named, not "Cryptographic error" alone.
    func testDamagedCertificateIsNamed() throws {
        var lines = try String(contentsOfFile: worker.cert, encoding: .utf8).components(separatedBy: "\n")
        lines[3] = String(repeating: "A", count: lines[3].count)
        let damaged = dir.appendingPathComponent("damaged.pem").path
        try lines.joined(separator: "\n").write(toFile: damaged, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TLSOptions(certFile: damaged, keyFile: worker.key, caFile: ca.certFile).validate()) {
            XCTAssertTrue("\($0)".hasPrefix("TLS certificate \(damaged) with key \(worker.key) cannot be loaded"), "\($0)")
        }
        XCTAssertThrowsError(try TLSOptions(certFile: worker.cert, keyFile: worker.key, caFile: damaged).validate()) {
            XCTAssertTrue("\($0)".hasPrefix("TLS CA certificate file \(damaged) cannot be loaded"), "\($0)")
        }
    }
}
