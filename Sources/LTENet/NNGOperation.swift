import CNNG
import Foundation

/// One `nng_aio`: the handle for a single asynchronous nng operation (a context's send or receive).
///
/// Two ways to wait for it. `runBlocking` parks the calling thread in `nng_aio_wait`, so it belongs
/// on a dedicated thread, never on Swift's cooperative pool. `run` (async) blocks no thread at all:
/// nng's completion callback, on nng's own thread, resumes the suspended task — which is why the
/// async APIs here need no thread hop. Task cancellation cancels the aio (`NNG_ECANCELED`).
///
/// One operation at a time per aio; starting a second while one is pending throws instead of
/// corrupting nng's state.
final class NNGOperation: @unchecked Sendable {
    private var aio: OpaquePointer!
    private let lock = NSLock()
    private var busy = false
    private var continuation: CheckedContinuation<Int32, Never>?

    init() throws {
        let context = Unmanaged.passUnretained(self).toOpaque()
        var handle: OpaquePointer? = nil
        try NNGError.check(nng_aio_alloc(&handle, { arg in
            Unmanaged<NNGOperation>.fromOpaque(arg!).takeUnretainedValue().completed()
        }, context), "nng_aio_alloc")
        aio = handle
    }

    deinit {
        // The last reference can drop inside nng's completion callback (the callback holds one while
        // it resumes the waiting task), and nng_aio_free there would wait for that very callback:
        // a deadlock seen in CI. nng_aio_reap frees it from nng's reaper thread instead.
        nng_aio_reap(aio)
    }

    private func completed() {
        lock.lock()
        let c = continuation
        continuation = nil
        lock.unlock()
        c?.resume(returning: nng_aio_result(aio))
    }

    private func cancel() { nng_aio_cancel(aio) }

    private func claim(_ operation: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if busy { throw NNGError(code: NNGError.code(NNG_EBUSY), operation: "\(operation): another operation is pending on this context") }
        busy = true
    }

    private func release() {
        lock.lock()
        busy = false
        lock.unlock()
    }

    /// Sends `data` (copied once into an nng message) through `start`, e.g. `nng_ctx_send`.
    func sendBlocking(_ data: Data, timeout: Duration?, _ operation: String, start: (OpaquePointer) -> Void) throws {
        try claim(operation)
        defer { release() }
        try prepareSend(data, timeout: timeout, operation)
        start(aio)
        nng_aio_wait(aio)
        try finishSend(nng_aio_result(aio), operation)
    }

    func send(_ data: Data, timeout: Duration?, _ operation: String, start: @escaping (OpaquePointer) -> Void) async throws {
        try claim(operation)
        defer { release() }
        try prepareSend(data, timeout: timeout, operation)
        try finishSend(await wait(start), operation)
    }

    func receiveBlocking(timeout: Duration?, _ operation: String, start: (OpaquePointer) -> Void) throws -> Data {
        try claim(operation)
        defer { release() }
        nng_aio_set_timeout(aio, nngDuration(timeout))
        start(aio)
        nng_aio_wait(aio)
        return try finishReceive(nng_aio_result(aio), operation)
    }

    func receive(timeout: Duration?, _ operation: String, start: @escaping (OpaquePointer) -> Void) async throws -> Data {
        try claim(operation)
        defer { release() }
        nng_aio_set_timeout(aio, nngDuration(timeout))
        return try finishReceive(await wait(start), operation)
    }

    private func prepareSend(_ data: Data, timeout: Duration?, _ operation: String) throws {
        nng_aio_set_timeout(aio, nngDuration(timeout))
        nng_aio_set_msg(aio, try NNGMessage.make(data, operation))
    }

    private func finishSend(_ rv: Int32, _ operation: String) throws {
        if rv != 0 {
            // On failure the message is still ours.
            if let msg = nng_aio_get_msg(aio) { nng_msg_free(msg) }
            nng_aio_set_msg(aio, nil)
            throw NNGError(code: rv, operation: operation)
        }
    }

    private func finishReceive(_ rv: Int32, _ operation: String) throws -> Data {
        try NNGError.check(rv, operation)
        guard let msg = nng_aio_get_msg(aio) else { return Data() }
        nng_aio_set_msg(aio, nil)
        return NNGMessage.take(msg)
    }

    private func wait(_ start: @escaping (OpaquePointer) -> Void) async -> Int32 {
        let aio = self.aio!
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
                lock.lock()
                continuation = c
                lock.unlock()
                start(aio)
                // A cancel that landed before `start` found nothing to cancel; catch it here.
                if Task.isCancelled { nng_aio_cancel(aio) }
            }
        } onCancel: {
            self.cancel()
        }
    }
}
