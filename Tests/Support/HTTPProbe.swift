import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP client for the metrics endpoint (`lte server --metrics`): sends exactly the bytes a test
/// gives, well-formed or not, and reads what comes back until the server closes, within a deadline.
public enum HTTPProbe {
    /// Connects to 127.0.0.1:`port`, sends `request` and returns everything the server sent before
    /// closing, or nil when it could not connect. With `pause` the bytes go in two halves that many
    /// seconds apart (a slow client). Reading is bounded by `timeout` seconds.
    public static func exchange(port: Int, _ request: [UInt8], pause: Double = 0, timeout: Double = 5) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var out: [UInt8] = []
        var closed = false
        /// Reads what arrives until the server closes or `seconds` pass.
        func read(for seconds: Double) {
            let end = Date().addingTimeInterval(seconds)
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !closed && Date() < end {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n == 0 { closed = true; break }
                if n < 0 { if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue } else { closed = true; break } }
                out += buffer[0..<n]
            }
        }
        let halves = pause > 0 ? [Array(request.prefix(request.count / 2)), Array(request.dropFirst(request.count / 2))] : [request]
        for (i, part) in halves.enumerated() {
            // During the pause the server may answer (and close): what it sent is kept, the rest not sent.
            if i > 0 { read(for: pause) }
            if closed { break }
            var sent = 0
            while sent < part.count {
                let n = part[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
        }
        read(for: timeout)
        return String(decoding: out, as: UTF8.self)
    }

    /// `GET path` as a scraper sends it.
    public static func get(port: Int, path: String = "/metrics") -> String? {
        exchange(port: port, Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n".utf8))
    }

    /// The status code of an HTTP answer ("HTTP/1.1 200 OK" → 200).
    public static func status(_ answer: String?) -> Int? {
        guard let line = answer?.split(separator: "\r\n").first else { return nil }
        let parts = line.split(separator: " ")
        return parts.count >= 2 ? Int(parts[1]) : nil
    }

    /// The samples of a Prometheus text answer: `name{labels}` → value (comments skipped).
    public static func samples(_ answer: String) -> [String: Double] {
        guard let body = answer.range(of: "\r\n\r\n").map({ answer[$0.upperBound...] }) else { return [:] }
        var out: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = value
        }
        return out
    }
}
