import CNNG
import Foundation

/// The worker's end: an nng REQ socket dialing the server (DESIGN.md §4).
///
/// - Starts before the server: the dial is non-blocking (NNG_FLAG_NONBLOCK) and nng keeps retrying
///   in the background, every `reconnectMin` growing to `reconnectMax`; the same retry reconnects
///   after a server restart. A request made while disconnected waits (up to `sendTimeout`) for a
///   connection.
/// - Resend: nng's REQ re-sends an unanswered request every 60 s by default. The server answers a
///   push only when its round closes, which can take longer than that, so the default would re-send
///   whole pushes (megabytes) for nothing. `resendTime` is therefore disabled by default (nil); the
///   worker's own loop re-pushes, with a fresh nonce, when a request fails or times out. Pushes are
///   idempotent (DESIGN.md §4), so enabling it is safe, merely wasteful; see `ReplayGuard` for how
///   the server must treat a byte-identical resend.
/// - Each `request` runs on its own nng context, so several may be in flight from different
///   threads or tasks (e.g. a status query while a push waits for its round).
///
/// `request(_:)` blocking parks the calling thread: use it on a dedicated thread, never on Swift's
/// cooperative pool. `request(_:) async` blocks no thread (nng's callback resumes the task).
public final class NNGRequestSocket: @unchecked Sendable {
    public let url: String
    public let maxMessageBytes: Int
    public let sendTimeout: Duration?
    public let receiveTimeout: Duration?
    let socket: nng_socket
    private let lock = NSLock()
    private var closed = false

    /// Opens a REQ socket and starts dialing `url` in the background.
    /// - Parameters:
    ///   - maxMessageBytes: largest reply accepted (NNG_OPT_RECVMAXSZ); a welcome carries the weights.
    ///   - sendTimeout: how long a request may wait for a connection to the server (nil: forever).
    ///   - receiveTimeout: how long to wait for the reply once sent (nil: forever). Must exceed the
    ///     server's round timeout, since pushes are answered at round close.
    ///   - resendTime: nil disables REQ resend (NNG_OPT_REQ_RESENDTIME = infinite).
    ///   - reconnectMin/Max: NNG_OPT_RECONNMINT/MAXT, the dialer's retry backoff.
    ///   - tls: required for, and only for, `tls+tcp://` addresses.
    public init(dial url: String, maxMessageBytes: Int, sendTimeout: Duration? = .seconds(60),
                receiveTimeout: Duration? = nil, resendTime: Duration? = nil,
                reconnectMin: Duration = .milliseconds(100), reconnectMax: Duration = .seconds(2),
                tls: TLSOptions? = nil) throws {
        try NNGEndpoint.checkScheme(url, tls)
        var s = nng_socket()
        try NNGError.check(nng_req0_open(&s), "nng_req0_open")
        do {
            let limit = NNGEndpoint.receiveLimit(maxMessageBytes)
            try NNGError.check(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, limit), "set receive size limit")
            try NNGError.check(nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, nngDuration(resendTime)), "set resend time")
            var d = nng_dialer()
            try NNGError.check(nng_dialer_create(&d, s, url), "dial \(url)")
            try NNGError.check(nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, limit), "set dialer receive size limit")
            try NNGError.check(nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, nngDuration(reconnectMin)), "set reconnect time")
            try NNGError.check(nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, nngDuration(reconnectMax)), "set reconnect time")
            if let tls {
                let cfg = try tls.makeConfig(server: false, url: url)
                defer { nng_tls_config_free(cfg) }  // the dialer holds its own reference
                try NNGError.check(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer(cfg)), "TLS config for \(url)")
            }
            try NNGError.check(nng_dialer_start(d, Int32(NNG_FLAG_NONBLOCK)), "dial \(url)")
        } catch {
            nng_close(s)
            throw error
        }
        self.url = url
        self.maxMessageBytes = maxMessageBytes
        self.sendTimeout = sendTimeout
        self.receiveTimeout = receiveTimeout
        self.socket = s
    }

    deinit { close() }

    /// Sends one request and waits for its reply (blocking).
    public func request(_ data: Data) throws -> Data {
        let (ctx, op) = try openContext()
        defer { nng_ctx_close(ctx) }
        try op.sendBlocking(data, timeout: sendTimeout, "send request to \(url)") { nng_ctx_send(ctx, $0) }
        return try op.receiveBlocking(timeout: receiveTimeout, "wait for reply from \(url)") { nng_ctx_recv(ctx, $0) }
    }

    /// Sends one request and waits for its reply without blocking a thread.
    public func request(_ data: Data) async throws -> Data {
        let (ctx, op) = try openContext()
        defer { nng_ctx_close(ctx) }
        try await op.send(data, timeout: sendTimeout, "send request to \(url)") { nng_ctx_send(ctx, $0) }
        return try await op.receive(timeout: receiveTimeout, "wait for reply from \(url)") { nng_ctx_recv(ctx, $0) }
    }

    /// Closes the socket; requests in flight fail with "Object closed". Safe from any thread.
    public func close() {
        lock.lock()
        let first = !closed
        closed = true
        lock.unlock()
        if first { nng_close(socket) }
    }

    private func openContext() throws -> (nng_ctx, NNGOperation) {
        var ctx = nng_ctx()
        try NNGError.check(nng_ctx_open(&ctx, socket), "open request context on \(url)")
        do {
            return (ctx, try NNGOperation())
        } catch {
            nng_ctx_close(ctx)
            throw error
        }
    }
}
