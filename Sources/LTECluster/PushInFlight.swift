import Foundation
import LTENet
import LTENumerics

/// A push whose answer is awaited on a thread of its own while the worker trains its next round
/// (`lte.overlap`). Everything the request needs was captured before the thread started, so the
/// thread reads nothing the training moves; the worker collects the answer at a fixed point — the
/// end of the next round's steps — whenever it actually arrived.
final class PushInFlight: @unchecked Sendable {
    /// The round pushed for.
    let round: Int
    /// Each of the worker's replicas' replicated tensors as pushed (packed), in `heads` order: the
    /// merged mean replaces them, and the progress made since is kept (`HeadReplica.adopt`).
    let replicated: [FloatBuffer]
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<WireMessage, Error>?

    /// Starts `send` on a new thread.
    init(round: Int, replicated: [FloatBuffer], send: @escaping () throws -> WireMessage) {
        self.round = round
        self.replicated = replicated
        let t = Thread { [self] in
            result = Result { try send() }
            done.signal()
        }
        t.stackSize = 1 << 20
        t.start()
    }

    /// Waits for the answer (as long as the request takes: the exchange has its own timeouts).
    func answer() throws -> WireMessage {
        done.wait()
        done.signal()
        return try result!.get()
    }
}
