import Foundation
import LTEBase
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP side of `lte server --metrics HOST:PORT`: answers `GET /metrics` with the text a
/// Prometheus server scrapes, and nothing else. It is reachable by anyone who can reach the port,
/// so it is built to be boring under attack rather than featureful:
///
/// - one thread of its own, one connection at a time, one request per connection (then closed):
///   it never touches the round loop, and the worst a client can do is delay the next scrape;
/// - a request is read for at most `requestTimeout` in all (a client that trickles bytes is cut
///   off) and at most `maxRequestBytes` of it (a longer one gets 431);
/// - only `GET /metrics` (a query string is ignored) gets 200; another path 404, another method
///   405, a request line that does not parse 400. Every answer says `Connection: close`.
///
/// POSIX sockets rather than an HTTP framework: the whole protocol it needs is one request line.
public final class MetricsListener: @unchecked Sendable {
    /// The body of a scrape, made when one arrives (on the listener's thread).
    public typealias Render = @Sendable () -> String

    public static let maxRequestBytes = 8192
    public static let requestTimeout: Duration = .seconds(2)

    /// The address actually bound (the kernel's port when 0 was asked for), as HOST:PORT.
    public let boundAddress: String
    private let fd: Int32
    private let stopping = NSLock()
    private var stopped = false
    private var thread: Thread?

    /// Binds `address` (HOST:PORT; HOST a name or IPv4/IPv6 literal, IPv6 in brackets; PORT 0–65535,
    /// 0 for any free port) and listens; serving starts with `start`. Throws an `LTEError` naming the
    /// flag on a malformed address or one that cannot be bound.
    public init(address: String, flag: String = "--metrics") throws {
        let (host, port) = try Self.parse(address, flag: flag)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw LTEError("\(flag) \(address): cannot resolve host \(host.debugDescription) (\(String(cString: gai_strerror(status))))")
        }
        defer { freeaddrinfo(list) }
        let s = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw LTEError.posix("\(flag) \(address): cannot open a socket") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(s, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(s, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(s)
            throw LTEError("\(flag) \(address): cannot listen there (\(reason))")
        }
        fd = s
        boundAddress = "\(host.contains(":") ? "[\(host)]" : host):\(Self.localPort(of: s) ?? port)"
    }

    deinit { stop(); close(fd) }

    /// Checks an address's form without binding it: HOST:PORT with a port in 0–65535.
    public static func parse(_ address: String, flag: String = "--metrics") throws -> (host: String, port: Int) {
        guard let colon = address.lastIndex(of: ":") else { throw LTEError("\(flag) \(address): expected HOST:PORT, e.g. 127.0.0.1:9464") }
        var host = String(address[..<colon])
        let digits = address[address.index(after: colon)...]
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains("/") else { throw LTEError("\(flag) \(address): expected HOST:PORT, e.g. 127.0.0.1:9464") }
        guard digits.allSatisfy(\.isASCII), let port = Int(digits), (0...65535).contains(port) else {
            throw LTEError("\(flag) \(address): port \(digits) is not a TCP port (0–65535)")
        }
        return (host, port)
    }

    /// Starts answering scrapes with `render`'s text on a thread of the listener's own.
    public func start(render: @escaping Render) {
        let t = Thread { [self] in serve(render) }
        t.name = "lte-metrics"
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    /// Stops accepting; the connection being answered, if any, ends within `requestTimeout`.
    public func stop() { stopping.lock(); stopped = true; stopping.unlock() }

    private var isStopped: Bool { stopping.lock(); defer { stopping.unlock() }; return stopped }

    private func serve(_ render: Render) {
        while !isStopped {
            // Polled so `stop` is noticed within a quarter second without closing a descriptor under a blocked accept.
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 250) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            answer(client, render)
            close(client)
        }
    }

    /// Reads one request (bounded in bytes and time) and writes one answer.
    private func answer(_ client: Int32, _ render: Render) {
        var timeout = timeval(tv_sec: 0, tv_usec: 250_000)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sendTimeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        let deadline = ContinuousClock.now + Self.requestTimeout
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while Self.headerEnd(request) == nil {
            guard request.count <= Self.maxRequestBytes else { return respond(client, 431, "request header too large\n") }
            guard ContinuousClock.now < deadline else { return respond(client, 408, "request timeout\n") }
            let n = recv(client, &buffer, buffer.count, 0)
            if n == 0 { return }                                        // closed before a whole request
            if n < 0 { if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue } else { return } }
            request += buffer[0..<n]
        }
        let line = request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(bytes: parts[0], encoding: .ascii), let target = String(bytes: parts[1], encoding: .ascii),
              String(bytes: parts[2], encoding: .ascii)?.hasPrefix("HTTP/1.") == true else {
            return respond(client, 400, "bad request\n")
        }
        guard method == "GET" else { return respond(client, 405, "only GET /metrics\n", extra: "Allow: GET\r\n") }
        guard target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first == "/metrics" else {
            return respond(client, 404, "not found: only /metrics is served\n")
        }
        respond(client, 200, render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    /// Where the request's header ends (its blank line), if it has arrived.
    private static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 1..<bytes.count where bytes[i] == UInt8(ascii: "\n") {
            if bytes[i - 1] == UInt8(ascii: "\n") { return i }
            if i >= 3, bytes[i - 1] == UInt8(ascii: "\r"), bytes[i - 2] == UInt8(ascii: "\n") { return i }
        }
        return nil
    }

    private static let reasons = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
                                  431: "Request Header Fields Too Large"]

    private func respond(_ client: Int32, _ code: Int, _ body: String, contentType: String = "text/plain; charset=utf-8", extra: String = "") {
        let payload = Array(body.utf8)
        let head = "HTTP/1.1 \(code) \(Self.reasons[code] ?? "")\r\nContent-Type: \(contentType)\r\nContent-Length: \(payload.count)\r\n"
            + "\(extra)Connection: close\r\n\r\n"
        let bytes = Array(head.utf8) + payload
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a client gone mid-answer must not end the server with SIGPIPE.
            let n = bytes[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { if n < 0 && errno == EINTR { continue } else { return } }
            sent += n
        }
        shutdown(client, Int32(SHUT_WR))
        // Closing with unread input would reset the connection and could destroy the answer before the
        // client reads it (a refused oversized request): read and drop what is still coming, bounded.
        var sink = [UInt8](repeating: 0, count: 4096)
        var drained = 0
        let end = ContinuousClock.now + .milliseconds(500)
        while drained < 1 << 20, ContinuousClock.now < end {
            let n = recv(client, &sink, sink.count, 0)
            if n == 0 { return }
            if n < 0 { if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue } else { return } }
            drained += n
        }
    }

    private static func localPort(of s: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &length) } } == 0
        guard ok else { return nil }
        return withUnsafePointer(to: &storage) { p -> Int in
            if Int32(p.pointee.ss_family) == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }
}
