import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A client that speaks nng's SP-over-TCP framing by hand, for what no nng REQ socket would do:
/// pipeline requests without reading the replies, declare a frame larger than it sends.
///
/// Wire: an 8-byte handshake (0x00 'S' 'P' 0x00, protocol id, 2 reserved bytes) each way, then
/// messages as a big-endian UInt64 length and the bytes; a REQ message starts with a 4-byte request
/// id whose top bit is set, and the reply echoes it.
final class RawSPClient {
    private let fd: Int32

    /// Connects to 127.0.0.1:`port`; `receiveBuffer` shrinks the kernel's buffer (a slow reader's
    /// replies back up sooner). Sends give up after `sendTimeout` seconds.
    init(port: Int, receiveBuffer: Int? = nil, sendTimeout: Int = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawSPError("socket") }
        if let receiveBuffer { var v = Int32(receiveBuffer); setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(4)) }
        var tv = timeval(tv_sec: sendTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { Glibc.close(fd); throw RawSPError("connect to port \(port)") }
        guard send(Data([0, 0x53, 0x50, 0, 0x00, 0x30, 0, 0])), let peer = read(8), peer.prefix(4) == Data([0, 0x53, 0x50, 0]) else {
            Glibc.close(fd); throw RawSPError("SP handshake")
        }
    }

    deinit { Glibc.close(fd) }

    /// Sends one request carrying `body`; false once the connection is gone or the send timed out.
    @discardableResult
    func request(id: UInt32, _ body: Data) -> Bool {
        var frame = Data()
        withUnsafeBytes(of: UInt64(body.count + 4).bigEndian) { frame.append(contentsOf: $0) }
        withUnsafeBytes(of: (id | 0x8000_0000).bigEndian) { frame.append(contentsOf: $0) }
        frame.append(body)
        return send(frame)
    }

    /// Writes raw bytes; false once the connection is gone or the send timed out.
    func send(_ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                sent += n
            }
            return true
        }
    }

    /// The next reply's body (request id stripped), or nil on timeout or a closed connection.
    func reply() -> Data? {
        guard let header = read(8) else { return nil }
        let length = header.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length >= 4, length < 1 << 26, let body = read(Int(length)) else { return nil }
        return body.dropFirst(4)
    }

    private func read(_ count: Int) -> Data? {
        var out = Data(count: count)
        var got = 0
        let ok = out.withUnsafeMutableBytes { raw -> Bool in
            while got < count {
                let n = recv(fd, raw.baseAddress! + got, count - got, 0)
                if n <= 0 { return false }
                got += n
            }
            return true
        }
        return ok ? out : nil
    }
}

struct RawSPError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String) { description = "raw SP client: \(what) failed (errno \(errno))" }
}
