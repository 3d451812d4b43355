import CNNG
import Foundation

/// One independent request/reply exchange on an `NNGReplySocket` (an `nng_ctx`).
///
/// Cycle: `receive` a request, then `send` exactly one reply — possibly much later (the server
/// answers a push when its round closes). Several contexts on one socket hold several workers'
/// requests at once, and their replies may go out in any order; nng routes each reply back to the
/// pipe its request came from. If that worker disconnected meanwhile, the reply is dropped.
///
/// One operation at a time per context. Blocking variants are for dedicated threads; async
/// variants suspend without blocking a thread (nng's completion callback resumes the task).
public final class NNGReplyContext: @unchecked Sendable {
    public let socket: NNGReplySocket
    private let ctx: nng_ctx
    private let operation: NNGOperation
    private let lock = NSLock()
    private var closed = false

    init(socket: NNGReplySocket) throws {
        var c = nng_ctx()
        try NNGError.check(nng_ctx_open(&c, socket.socket), "open context on \(socket.url)")
        do {
            operation = try NNGOperation()
        } catch {
            nng_ctx_close(c)
            throw error
        }
        self.socket = socket
        self.ctx = c
    }

    deinit { close() }

    /// Waits for the next request (blocking). `timeout` nil waits forever.
    public func receive(timeout: Duration? = nil) throws -> Data {
        let ctx = self.ctx
        return try operation.receiveBlocking(timeout: timeout, "receive on \(socket.url)") { nng_ctx_recv(ctx, $0) }
    }

    /// Waits for the next request without blocking a thread.
    public func receive(timeout: Duration? = nil) async throws -> Data {
        let ctx = self.ctx
        return try await operation.receive(timeout: timeout, "receive on \(socket.url)") { nng_ctx_recv(ctx, $0) }
    }

    /// Replies to the request this context received (blocking).
    public func send(_ data: Data, timeout: Duration? = .seconds(10)) throws {
        let ctx = self.ctx
        try operation.sendBlocking(data, timeout: timeout, "reply on \(socket.url)") { nng_ctx_send(ctx, $0) }
    }

    /// Replies to the request this context received, without blocking a thread.
    public func send(_ data: Data, timeout: Duration? = .seconds(10)) async throws {
        let ctx = self.ctx
        try await operation.send(data, timeout: timeout, "reply on \(socket.url)") { nng_ctx_send(ctx, $0) }
    }

    /// Closes the context; a pending receive or send fails with "Object closed". Safe from any thread.
    public func close() {
        lock.lock()
        let first = !closed
        closed = true
        lock.unlock()
        if first { nng_ctx_close(ctx) }
    }
}
