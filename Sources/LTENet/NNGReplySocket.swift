import CNNG
import Foundation

/// The server's end: an nng REP socket listening on one address (DESIGN.md §4).
///
/// A REP socket on its own answers one request at a time. The parameter server instead holds every
/// worker's push until the round closes, so it opens one `NNGReplyContext` per request it wants
/// pending at once (`makeContext()`); each context receives a request and later sends its reply,
/// independently of the others. The socket-level `receive()`/`send(_:)` remain for simple
/// one-at-a-time services.
///
/// Blocking calls (`receive()`, `send(_:)`, `close(lingering:)`) park the calling thread: call them
/// from a dedicated thread, never from Swift's cooperative pool. Contexts also offer async calls,
/// which block no thread.
public final class NNGReplySocket: @unchecked Sendable {
    public let url: String
    public let maxMessageBytes: Int
    let socket: nng_socket
    private let listener: nng_listener
    private let connections: ConnectionLimit?
    private let lock = NSLock()
    private var closed = false

    /// Opens a REP socket and starts listening.
    /// - Parameters:
    ///   - maxMessageBytes: largest frame accepted; nng drops the connection of a peer that sends
    ///     more (NNG_OPT_RECVMAXSZ), so an oversized message never reaches memory.
    ///   - receiveTimeout/sendTimeout: for the socket-level `receive()`/`send(_:)` (nil: forever).
    ///   - tls: required for, and only for, `tls+tcp://` addresses.
    ///   - maxConnections: connections open at once; one more is closed as it arrives (nil: no cap).
    public init(listen url: String, maxMessageBytes: Int, receiveTimeout: Duration? = nil,
                sendTimeout: Duration? = .seconds(10), tls: TLSOptions? = nil, maxConnections: Int? = nil) throws {
        try NNGEndpoint.checkScheme(url, tls)
        var s = nng_socket()
        try NNGError.check(nng_rep0_open(&s), "nng_rep0_open")
        var l = nng_listener()
        let connectionLimit = maxConnections.map(ConnectionLimit.init)
        do {
            try connectionLimit?.install(on: s)
            let limit = NNGEndpoint.receiveLimit(maxMessageBytes)
            try NNGError.check(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, limit), "set receive size limit")
            try NNGError.check(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, nngDuration(receiveTimeout)), "set receive timeout")
            try NNGError.check(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, nngDuration(sendTimeout)), "set send timeout")
            try NNGError.check(nng_listener_create(&l, s, url), "listen on \(url)")
            try NNGError.check(nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, limit), "set listener receive size limit")
            if let tls {
                let cfg = try tls.makeConfig(server: true, url: url)
                defer { nng_tls_config_free(cfg) }  // the listener holds its own reference
                try NNGError.check(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer(cfg)), "TLS config for \(url)")
            }
            try NNGError.check(nng_listener_start(l, 0), "listen on \(url)")
        } catch {
            nng_close(s)
            throw error
        }
        self.url = url
        self.maxMessageBytes = maxMessageBytes
        self.socket = s
        self.listener = l
        self.connections = connectionLimit
    }

    /// Connections open now, and those closed for being over `maxConnections` (nil without a cap).
    public var connectionCounts: (open: Int, refused: Int)? { connections.map { ($0.count, $0.refused) } }

    deinit { close() }

    /// Connections dropped before they were accepted (failed TLS handshakes, junk), counted since the
    /// listener started; nil when libnng keeps no statistics.
    public var acceptFailures: AcceptFailures? { AcceptFailures.read(listener) }

    /// The TCP port actually bound (useful after listening on port 0); nil for ipc://.
    public var boundPort: Int? {
        var port: Int32 = 0
        return nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port) == 0 ? Int(port) : nil
    }

    /// A new context: one request in flight, answered whenever the caller is ready.
    public func makeContext() throws -> NNGReplyContext {
        try NNGReplyContext(socket: self)
    }

    /// Receives the next request on the socket itself (blocking; NNG_OPT_RECVTIMEO applies).
    public func receive() throws -> Data {
        var msg: OpaquePointer? = nil
        try NNGError.check(nng_recvmsg(socket, &msg, 0), "receive on \(url)")
        return msg.map(NNGMessage.take) ?? Data()
    }

    /// Replies to the request last received by `receive()` (blocking; NNG_OPT_SENDTIMEO applies).
    public func send(_ data: Data) throws {
        let msg = try NNGMessage.make(data, "reply on \(url)")
        let rv = nng_sendmsg(socket, msg, 0)
        if rv != 0 {
            nng_msg_free(msg)  // nng took it only on success
            throw NNGError(code: rv, operation: "reply on \(url)")
        }
    }

    /// Closes the socket; pending operations on it and its contexts fail with "Object closed".
    ///
    /// nng has no linger in 1.5: a reply handed to nng just before `close` may never leave the
    /// machine. `lingering` sleeps that long first so the last replies can drain (blocking).
    public func close(lingering: Duration = .zero) {
        lock.lock()
        let first = !closed
        closed = true
        lock.unlock()
        guard first else { return }
        if lingering > .zero { Thread.sleep(forTimeInterval: Double(lingering.components.seconds) + Double(lingering.components.attoseconds) * 1e-18) }
        nng_close(socket)
    }
}
