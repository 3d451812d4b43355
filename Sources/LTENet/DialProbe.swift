import CNNG
import Foundation

/// One connection attempt made only to learn how it ends, then closed (`ConnectionDiagnosis`).
///
/// A socket's own dialer retries in the background and never says why it failed: a request just
/// times out. A synchronous `nng_dialer_start` instead returns the first attempt's error — for
/// tls+tcp:// after the TLS handshake and nng's protocol header, so a refused certificate shows up
/// here as `NNG_ECRYPTO`, `NNG_EPEERAUTH` or `NNG_ECONNSHUT`. The attempt runs on its own thread
/// and is abandoned (its socket closed) after `timeout`, since a TCP connect to a host that drops
/// packets can hang for minutes.
enum DialProbe {
    enum Outcome: Equatable {
        case connected
        case failed(Int32)
        case noAnswer
    }

    /// Dials `url` once; `tlsConfig` (held by the dialer, freed by the caller) for tls+tcp://.
    static func dial(_ url: String, tlsConfig: OpaquePointer?, timeout: Duration) -> Outcome {
        var socket = nng_socket()
        guard nng_req0_open(&socket) == 0 else { return .failed(NNGError.code(NNG_ENOMEM)) }
        defer { nng_close(socket) }  // also ends an attempt still in flight (it returns NNG_ECLOSED)
        var dialer = nng_dialer()
        var rv = nng_dialer_create(&dialer, socket, url)
        if rv == 0, let tlsConfig { rv = nng_dialer_set_ptr(dialer, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer(tlsConfig)) }
        if rv != 0 { return .failed(rv) }
        let attempt = Attempt()
        let thread = Thread { [dialer] in attempt.finish(nng_dialer_start(dialer, 0)) }
        thread.stackSize = 1 << 18
        thread.start()
        guard let result = attempt.wait(timeout) else { return .noAnswer }
        return result == 0 ? .connected : .failed(result)
    }

    /// The result of one dial, handed from its thread to the waiting caller.
    private final class Attempt: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var result: Int32?

        func finish(_ rv: Int32) {
            lock.lock(); result = rv; lock.unlock()
            done.signal()
        }

        func wait(_ timeout: Duration) -> Int32? {
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            lock.lock(); defer { lock.unlock() }
            return result
        }
    }
}
