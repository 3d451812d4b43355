import Foundation
import LTEBase
import LTENet
import LTETestSupport
import XCTest

/// The metrics endpoint's HTTP side, over real loopback sockets: a scrape gets the rendered text;
/// everything else gets a short refusal and the connection closed; hostile clients (oversized,
/// trickling, garbage, gone mid-request) neither stop it nor keep it from the next scrape for long.
final class MetricsListenerTests: XCTestCase {
    private var listener: MetricsListener!
    private var port = 0
    private let scrapes = Box(0)

    override func setUpWithError() throws {
        listener = try MetricsListener(address: "127.0.0.1:0")
        port = Int(listener.boundAddress.split(separator: ":").last!)!
        XCTAssertNotEqual(port, 0, "the kernel's port was not reported")
        listener.start { [scrapes] in
            scrapes.mutate { $0 += 1 }
            return "# TYPE lte_round gauge\nlte_round \(scrapes.read { $0 })\n"
        }
    }

    override func tearDown() { listener.stop() }

    func testScrapeGetsTheRenderedTextEachTime() throws {
        for expected in 1...3 {
            let answer = try XCTUnwrap(HTTPProbe.get(port: port))
            XCTAssertEqual(HTTPProbe.status(answer), 200, answer)
            XCTAssertTrue(answer.contains("Content-Type: text/plain; version=0.0.4"), answer)
            XCTAssertTrue(answer.contains("Connection: close"), answer)
            XCTAssertEqual(HTTPProbe.samples(answer)["lte_round"], Double(expected), answer)
        }
        // A query string is a scrape too (Prometheus may add one); a bare-LF request as well.
        XCTAssertEqual(HTTPProbe.status(HTTPProbe.exchange(port: port, Array("GET /metrics?x=1 HTTP/1.0\n\n".utf8))), 200)
    }

    func testEverythingElseIsRefusedAndTheNextScrapeStillWorks() throws {
        let cases: [(String, [UInt8], Int?)] = [
            ("another path", Array("GET / HTTP/1.1\r\n\r\n".utf8), 404),
            ("a path that only starts like it", Array("GET /metricsX HTTP/1.1\r\n\r\n".utf8), 404),
            ("another method", Array("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".utf8), 405),
            ("no version", Array("GET /metrics\r\n\r\n".utf8), 400),
            ("not HTTP", Array("GET /metrics SMTP/1.0\r\n\r\n".utf8), 400),
            ("binary garbage", (0..<600).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) } + Array("\r\n\r\n".utf8), 400),
            ("a header past the limit", Array("GET /metrics HTTP/1.1\r\nX: ".utf8) + [UInt8](repeating: 65, count: 64 << 10), 431),
            ("nothing, then gone", [], nil),
        ]
        for (what, bytes, expected) in cases {
            let answer = HTTPProbe.exchange(port: port, bytes, timeout: 4)
            if let expected { XCTAssertEqual(HTTPProbe.status(answer), expected, "\(what): \(answer ?? "no connection")") }
            XCTAssertEqual(HTTPProbe.status(HTTPProbe.get(port: port)), 200, "a scrape after \(what) failed")
        }
        let before = scrapes.read { $0 }
        _ = HTTPProbe.exchange(port: port, Array("GET /nothing HTTP/1.1\r\n\r\n".utf8))
        XCTAssertEqual(scrapes.read { $0 }, before, "a refused request rendered the metrics")
    }

    /// A client that sends half a request and stalls is cut off at the request timeout; a client
    /// that never sends at all likewise: a scrape behind them waits at most that long.
    func testTricklingClientIsCutOffAtTheTimeout() throws {
        let stall = Background { HTTPProbe.exchange(port: self.port, Array("GET /metrics HTTP/1.1\r\n\r\n".utf8), pause: 4, timeout: 6) }
        Thread.sleep(forTimeInterval: 0.3)
        let began = Date()
        XCTAssertEqual(HTTPProbe.status(HTTPProbe.get(port: port)), 200)
        XCTAssertLessThan(Date().timeIntervalSince(began), 3.5, "a stalled client held the endpoint past its timeout")
        XCTAssertEqual(HTTPProbe.status(try stall.wait(seconds: 10)), 408)
    }

    func testBadAddressesAreOneLineErrors() throws {
        assertLTEError(try MetricsListener(address: "9464"), contains: "--metrics 9464", "HOST:PORT")
        assertLTEError(try MetricsListener(address: "127.0.0.1:70000"), contains: "port 70000 is not a TCP port")
        assertLTEError(try MetricsListener(address: ":9464"), contains: "HOST:PORT")
        assertLTEError(try MetricsListener(address: "127.0.0.1:\(port)"), contains: "cannot listen there")
    }
}
