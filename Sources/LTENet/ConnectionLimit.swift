import CNNG
import Foundation

/// Caps the connections (nng pipes) a listening socket keeps open at once (issue 20, item 16).
///
/// Each connection can hold a frame being read and one waiting for a context, whatever its MAC turns
/// out to be; without a cap, the memory an unauthenticated peer can pin grows with the connections it
/// opens. A connection over the cap is closed as it is added, before it can send anything. Honest
/// peers hold one connection each (a worker, `lte status`), so the cap only needs headroom over them.
final class ConnectionLimit: @unchecked Sendable {
    let maximum: Int
    private let lock = NSLock()
    private var open = Set<UInt32>()
    private(set) var refused = 0

    init(maximum: Int) { self.maximum = max(1, maximum) }

    /// Registers the callbacks on `socket`; `self` must outlive it (the socket holds it).
    func install(on socket: nng_socket) throws {
        let me = Unmanaged.passUnretained(self).toOpaque()
        let callback: nng_pipe_cb = { pipe, event, arg in
            Unmanaged<ConnectionLimit>.fromOpaque(arg!).takeUnretainedValue().handle(pipe, event)
        }
        try NNGError.check(nng_pipe_notify(socket, NNG_PIPE_EV_ADD_PRE, callback, me), "set connection limit")
        try NNGError.check(nng_pipe_notify(socket, NNG_PIPE_EV_REM_POST, callback, me), "set connection limit")
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return open.count }

    private func handle(_ pipe: nng_pipe, _ event: nng_pipe_ev) {
        let id = nng_pipe_id(pipe)
        lock.lock()
        if event == NNG_PIPE_EV_ADD_PRE {
            if open.count >= maximum {
                refused += 1
                lock.unlock()
                nng_pipe_close(pipe)
                return
            }
            open.insert(UInt32(bitPattern: id))
        } else {
            open.remove(UInt32(bitPattern: id))
        }
        lock.unlock()
    }
}
