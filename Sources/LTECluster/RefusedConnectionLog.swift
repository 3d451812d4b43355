import Foundation
import LTENet

/// Logs the connections the server's listener dropped before accepting them — failed TLS
/// handshakes above all, which would otherwise pass in silence (issue 20, item 8): the refused
/// worker only times out, and the server's operator would never learn that someone tried.
///
/// nng 1.5 counts such connections by reason but gives neither the peer's address nor its
/// certificate (the connection never became a pipe), so each line says how many and why, and the
/// likely causes. Rate-limited by construction: one line per `interval` at most, summing what came
/// in between, whatever a peer does.
final class RefusedConnectionLog: @unchecked Sendable {
    private let socket: NNGReplySocket
    private let interval: Duration
    private let write: (String) -> Void
    private let stopping = ManagedAtomicFlag()
    private var thread: Thread?

    init(socket: NNGReplySocket, interval: Duration = .seconds(5), write: @escaping (String) -> Void) {
        self.socket = socket; self.interval = interval; self.write = write
    }

    func start() {
        guard let start = socket.acceptFailures else { return }  // a libnng without statistics
        let t = Thread { [self] in
            var logged = start
            let clock = ContinuousClock()
            var lastLine: ContinuousClock.Instant?
            while !stopping.isSet {
                Thread.sleep(forTimeInterval: 0.25)
                guard let now = socket.acceptFailures else { continue }
                let new = now - logged
                guard new.total > 0, lastLine.map({ clock.now - $0 >= interval }) ?? true else { continue }
                write("refused \(new.total) connection(s) before accepting them on \(socket.url) (nng gives no peer address for these): \(new.summary)")
                logged = now
                lastLine = clock.now
            }
        }
        t.name = "lte-refused-connections"
        t.stackSize = 1 << 18
        thread = t
        t.start()
    }

    func stop() { stopping.set() }
}
