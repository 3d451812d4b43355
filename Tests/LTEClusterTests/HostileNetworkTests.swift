import Foundation
@testable import LTECluster
import LTENet
import XCTest

/// Issue 20, items 15–17: what anyone who can reach the server's port could do to it, driven over
/// TCP loopback against a real `ParameterServer` (a raw SP client for what nng REQ sockets never do).
final class HostileNetworkTests: XCTestCase {
    let secret = try! SharedSecret(bytes: Data(repeating: 0x42, count: 32))

    private func serve(_ h: ServerHarness) throws -> (ParameterServer, port: Int) {
        let server = try ParameterServer(core: h.core, listen: "tcp://127.0.0.1:0", codec: WireCodec(secret: secret), concurrency: 32)
        server.start()
        return (server, try XCTUnwrap(server.socket.boundPort))
    }

    /// 15. One unauthenticated connection pipelines garbage and never reads its replies: they back up,
    /// and every context used to wait its 10 s send timeout on that connection, so honest requests sat
    /// unanswered. Refusals of undecodable frames now leave only if they can leave at once.
    func testASlowReaderPipeliningGarbageDoesNotStallHonestRequests() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let (server, port) = try serve(h)
        defer { server.stop() }
        let attacker = try RawSPClient(port: port, receiveBuffer: 4096, sendTimeout: 2)
        let stop = ManagedAtomicFlag()
        let flooding = Thread {
            let garbage = Data(repeating: 0xEE, count: 64)
            var id: UInt32 = 1
            while !stop.isSet, id < 400_000, attacker.request(id: id, garbage) { id += 1 }
        }
        flooding.start()
        defer { stop.set() }
        Thread.sleep(forTimeInterval: 1.5)     // long enough for the replies to back up
        let codec = WireCodec(secret: secret)
        let client = try NNGRequestSocket(dial: "tcp://127.0.0.1:\(port)", maxMessageBytes: 1 << 24, sendTimeout: .seconds(15), receiveTimeout: .seconds(15))
        defer { client.close() }
        var slowest = 0.0
        for _ in 0..<5 {
            let t0 = Date()
            guard case .status = try codec.decode(client.request(codec.encode(.statusRequest))) else { return XCTFail("no status") }
            slowest = max(slowest, Date().timeIntervalSince(t0))
            Thread.sleep(forTimeInterval: 0.3)
        }
        print("slow reader: slowest honest status request took \(String(format: "%.3f", slowest)) s")
        XCTAssertLessThan(slowest, 2, "honest requests stalled behind a slow reader's garbage")
        XCTAssertTrue(h.log.contains { $0.contains("refused a message") }, "the garbage left no log line")
        XCTAssertLessThan(h.log.count, 50, "one log line per garbage frame floods the log")
    }

    /// 16. Frames up to 1 GiB were read whole from anyone before any MAC was checked. The receive limit
    /// is now the run's largest honest request: a bigger frame's connection is dropped unanswered.
    func testAnOversizedFrameIsDroppedBeforeTheServerHoldsIt() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let (server, port) = try serve(h)
        defer { server.stop() }
        XCTAssertLessThan(h.core.largestRequestBytes, 1 << 20, "the tiny model's pushes are far under a MiB")
        let attacker = try RawSPClient(port: port, sendTimeout: 5)
        let size = 32 << 20
        var header = Data()
        withUnsafeBytes(of: UInt64(size + 4).bigEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(0x8000_0001).bigEndian) { header.append(contentsOf: $0) }
        var delivered = attacker.send(header)
        let chunk = Data(repeating: 0xAB, count: 1 << 20)
        for _ in 0..<(size >> 20) where delivered { delivered = attacker.send(chunk) }
        XCTAssertNil(attacker.reply(), "a \(size)-byte frame was read and answered")
        // The server still serves honest clients.
        let codec = WireCodec(secret: secret)
        let client = try NNGRequestSocket(dial: "tcp://127.0.0.1:\(port)", maxMessageBytes: 1 << 24, sendTimeout: .seconds(5), receiveTimeout: .seconds(5))
        defer { client.close() }
        guard case .status = try codec.decode(client.request(codec.encode(.statusRequest))) else { return XCTFail("no status") }
    }

    /// 16. Connections over the cap are closed as they arrive, so what unauthenticated peers can make the
    /// server hold is bounded by connections × the receive limit.
    func testConnectionsOverTheCapAreClosed() throws {
        let socket = try NNGReplySocket(listen: "tcp://127.0.0.1:0", maxMessageBytes: 1 << 16, maxConnections: 3)
        defer { socket.close() }
        let port = try XCTUnwrap(socket.boundPort)
        let clients = try (0..<3).map { _ in try RawSPClient(port: port) }
        defer { withExtendedLifetime(clients) {} }     // open until the end, not just until last used
        let end = Date().addingTimeInterval(5)
        while Date() < end, socket.connectionCounts?.open != 3 { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(socket.connectionCounts?.open, 3)
        // The fourth may see the handshake (nng sends it before adding the connection), then it is closed.
        if let fourth = try? RawSPClient(port: port, sendTimeout: 3) { XCTAssertNil(fourth.reply(), "a fourth connection stayed open") }
        XCTAssertEqual(socket.connectionCounts?.refused, 1)
        XCTAssertEqual(socket.connectionCounts?.open, 3)
    }

    /// 17. A refusal that quoted a 64 KiB tensor name was itself over the 64 KiB string limit: it could
    /// not be encoded and the client waited forever. Quotations are truncated now; the reply goes out.
    func testARefusalQuotingAHugeNameIsAnswered() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let (server, port) = try serve(h)
        defer { server.stop() }
        let codec = WireCodec(secret: secret)
        // A tensor with a 65,530-byte name and rank 99 (the encoder refuses that rank, so it is patched
        // in and the frame signed again): the decoder's refusal names the tensor.
        let long = String(repeating: "n", count: 65_530)   // its refusal used to exceed the 64 KiB string limit
        var push = h.honestPush(worker: "a", heads: [0])
        push.tensors = [WireTensor(name: long, shape: [1], values: [0])]
        var frame = try codec.encode(.push(push))
        let name = try XCTUnwrap(frame.range(of: Data(long.utf8)))
        frame[name.upperBound] = 99
        var covered = Data(frame.prefix(frame.count - 32))
        covered.append(codec.authenticator.trailer(for: covered))
        do { _ = try codec.decode(covered); XCTFail("a duplicated tensor name decoded") } catch let e as WireError {
            XCTAssertNoThrow(try codec.encode(.error(ErrorMessage(refusing: e))), "the refusal cannot be encoded")
        }
        let client = try NNGRequestSocket(dial: "tcp://127.0.0.1:\(port)", maxMessageBytes: 1 << 24, sendTimeout: .seconds(5), receiveTimeout: .seconds(5))
        defer { client.close() }
        guard case .error(let e) = try codec.decode(client.request(covered)) else { return XCTFail("not refused") }
        XCTAssertEqual(e.code, .malformed)
        XCTAssertTrue(e.message.contains("rank 99"), e.message)
        XCTAssertLessThan(e.message.utf8.count, 1024)
        XCTAssertFalse(h.log.contains { $0.utf8.count > 4096 }, "a log line quotes the whole name")
    }
}
