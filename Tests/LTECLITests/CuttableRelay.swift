import Foundation

/// A TCP relay on loopback that stands for one worker's link: it forwards bytes both ways between
/// the worker and the server, and can cut the link for a while, in one of two ways a real link fails:
///
///   drop     every connection is reset and new ones are closed as soon as they arrive (a router
///            that restarts, a NAT that forgets): the worker's nng sees the pipe go and redials
///   silence  nothing is forwarded, nothing is closed (a cable pulled, a radio gone): TCP holds the
///            bytes, the worker's request simply gets no answer until the link is back
final class CuttableRelay: @unchecked Sendable {
    enum Cut { case drop, silence }

    let port: Int
    private let target: Int
    private let listener: Int32
    private let lock = NSLock()
    private var cut: Cut?
    private var connections: [Connection] = []
    private var stopped = false

    /// Listens on a free loopback port and forwards to 127.0.0.1:`targetPort`.
    init(to targetPort: Int) throws {
        target = targetPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = Self.loopback(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        guard withUnsafePointer(to: &addr, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }) == 0,
              listen(fd, 16) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// Cuts the link (`for` seconds later it is whole again; this call returns at once).
    func cut(_ kind: Cut, for seconds: Double) {
        lock.lock()
        cut = kind
        let live = connections
        if kind == .drop { connections = [] }
        lock.unlock()
        if kind == .drop { live.forEach { $0.reset() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in
            lock.lock(); cut = nil; lock.unlock()
        }
    }

    var isCut: Bool { lock.lock(); defer { lock.unlock() }; return cut != nil }

    func stop() {
        lock.lock(); stopped = true; let live = connections; connections = []; lock.unlock()
        shutdown(listener, Int32(SHUT_RDWR)); close(listener)
        live.forEach { $0.reset() }
    }

    private var state: (cut: Cut?, stopped: Bool) { lock.lock(); defer { lock.unlock() }; return (cut, stopped) }

    private func acceptLoop() {
        while !state.stopped {
            let client = accept(listener, nil, nil)
            if client < 0 { if state.stopped { return }; continue }
            if state.cut == .drop { Self.reset(client); continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = Self.loopback(port: target)
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
            if !ok { close(server); Self.reset(client); continue }
            let c = Connection(client, server)
            lock.lock(); connections.append(c); lock.unlock()
            Thread { [self] in pump(c, from: client, to: server) }.start()
            Thread { [self] in pump(c, from: server, to: client) }.start()
        }
    }

    /// Copies bytes until either side closes; while the link is silenced, reads nothing (TCP keeps
    /// the bytes, as a real link's retransmissions would).
    private func pump(_ c: Connection, from source: Int32, to sink: Int32) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let s = state
            if s.stopped || c.isClosed { return }
            if s.cut == .silence { Thread.sleep(forTimeInterval: 0.05); continue }
            var p = pollfd(fd: source, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 100)
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n <= 0 { c.reset(); return }
            var sent = 0
            while sent < n {
                // send, not write: a peer that reset must not raise SIGPIPE in the test process.
                let m = buffer.withUnsafeBytes { send(sink, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { c.reset(); return }
                sent += m
            }
        }
    }

    /// Both ends of one relayed connection, closed once.
    private final class Connection: @unchecked Sendable {
        private let fds: (Int32, Int32)
        private let lock = NSLock()
        private var closed = false
        init(_ a: Int32, _ b: Int32) { fds = (a, b) }
        var isClosed: Bool { lock.lock(); defer { lock.unlock() }; return closed }
        func reset() {
            lock.lock(); defer { lock.unlock() }
            guard !closed else { return }
            closed = true
            CuttableRelay.reset(fds.0); CuttableRelay.reset(fds.1)
        }
    }

    /// Closes a socket with a reset (SO_LINGER 0), as a broken path looks to the peer.
    fileprivate static func reset(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(port).bigEndian
        return a
    }
}
