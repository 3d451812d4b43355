import Foundation
import LTEBase
import LTENet
import LTENumerics

/// The server process's network side: a REP socket with one context and one dedicated thread per
/// concurrent request (a push waits in its thread until its round closes), each decoding, asking the
/// `ServerCore`, and answering. Blocking nng calls stay on these threads, never on Swift's pool.
public final class ParameterServer: @unchecked Sendable {
    public let core: ServerCore
    public let socket: NNGReplySocket
    let codec: WireCodec
    private var threads: [Thread] = []
    private let stopping = ManagedAtomicFlag()
    private let undecodableLog: RateLimitedLog
    private var refusedConnections: RefusedConnectionLog!

    /// `concurrency` bounds the requests in flight: it must exceed the number of workers, since
    /// every worker's push holds a context until its round closes.
    ///
    /// What an unauthenticated peer can make the server hold is bounded before any MAC is checked:
    /// nng drops a connection whose frame is over the run's largest honest request
    /// (`ServerCore.largestRequestBytes`), and at most `maxConnections` connections are open at once,
    /// each holding at most one frame being read and one waiting for a context.
    public init(core: ServerCore, listen url: String, codec: WireCodec, concurrency: Int, tls: TLSOptions? = nil,
                maxConnections: Int? = nil) throws {
        self.core = core
        self.codec = codec
        undecodableLog = RateLimitedLog(interval: .seconds(1)) { [core] in core.log($0) }
        do {
            socket = try NNGReplySocket(listen: url, maxMessageBytes: min(codec.maxMessageBytes, core.largestRequestBytes), tls: tls,
                                        maxConnections: maxConnections ?? max(64, 4 * concurrency))
        } catch let e as NNGError {
            throw LTEError("cannot listen on \(url): \(e.reason)")
        }
        refusedConnections = RefusedConnectionLog(socket: socket) { [core] in core.log($0) }
        for i in 0..<concurrency {
            let ctx = try socket.makeContext()
            let t = Thread { [weak self] in self?.serve(ctx) }
            t.name = "lte-server-\(i)"
            t.stackSize = 1 << 20
            threads.append(t)
        }
    }

    public func start() {
        threads.forEach { $0.start() }
        refusedConnections.start()
    }

    /// Stops accepting work; pending replies get `linger` to leave before the socket closes.
    public func stop(linger: Duration = .milliseconds(300)) {
        stopping.set()
        refusedConnections.stop()
        socket.close(lingering: linger)
    }

    private func serve(_ ctx: NNGReplyContext) {
        while !stopping.isSet {
            let frame: Data
            do { frame = try ctx.receive(timeout: .milliseconds(250)) } catch let e as NNGError {
                if e.isTimeout { continue }
                if e.isClosed || stopping.isSet { return }
                core.log("receive failed: \(e.reason)")
                continue
            } catch { continue }
            let reply: WireMessage
            var round: Int?
            // A frame that does not decode (garbage, no or a wrong MAC) may come from anyone, e.g. a
            // peer that pipelines garbage and never reads. Its refusal is sent only if it can leave at
            // once (timeout zero: dropped when the peer's connection is backed up), so it never holds
            // a context that honest requests need; its log lines are rate-limited for the same reason.
            var sendTimeout: Duration? = .seconds(10)
            do {
                let message = try codec.decode(frame)
                reply = core.handle(message, frameBytes: frame.count)
                if case .roundResult(let r) = reply { round = r.round }
            } catch let e as WireError {
                undecodableLog.note("refused a message of \(frame.count) bytes: \(e.message)")
                reply = .error(ErrorMessage(refusing: e))
                sendTimeout = .zero
            } catch {
                reply = .error(ErrorMessage(code: .internalError, message: "\(error)"))
            }
            var sent = 0
            do {
                let bytes = try codec.encode(reply)
                try ctx.send(bytes, timeout: sendTimeout)
                sent = bytes.count
            } catch let e as NNGError where sendTimeout == .zero && e.isTimeout {
                // The unauthenticated peer is not reading: no answer, deliberately.
            } catch {
                core.log("could not answer: \(error)")
            }
            if let round { core.didAnswer(round: round, bytes: sent) }
        }
    }
}

/// A flag one thread sets and others poll, without a lock on the read path.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
