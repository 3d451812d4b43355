import Foundation
import LTEBase
import LTEData
import LTENet
import LTETraining

/// A worker process's network side (DESIGN.md §4): a REQ socket dialled to the server, over which it
/// drives a `WorkerCore`. Connection trouble is retried: until `connectTimeout` before the worker has
/// joined (a wrong address fails in a minute), until `reconnectTimeout` once it has (a link cut or a
/// server restart mid-run is waited out). nng redials by itself; a request that got no answer within
/// `reconnectTimeout` (a link that went silent) is sent again with a fresh nonce, and the core
/// resynchronises with whatever the server then says.
public final class WorkerRuntime {
    public struct Options {
        public var server: String
        public var id: String
        public var heads: [Int]
        public var data: TokenDataset
        /// The worker's own config fingerprint, if it was started with one (checked by the server).
        public var fingerprint: Data?
        /// How long to keep trying to reach a server that does not answer, before joining.
        public var connectTimeout: Duration = .seconds(60)
        /// Once joined: how long the server may stay unreachable (or a request unanswered) before
        /// the worker gives up. Long enough to outlast a link cut or a server restart.
        public var reconnectTimeout: Duration = .seconds(300)
        public var tls: TLSOptions?
        /// Open membership: with no `heads`, how many free heads to ask for (`--heads auto --max-heads K`),
        /// and how many rounds to train before leaving cleanly (nil: to the run's end).
        public var maxHeads = 0
        public var rounds: Int?
        public init(server: String, id: String, heads: [Int], data: TokenDataset, fingerprint: Data?) {
            self.server = server; self.id = id; self.heads = heads; self.data = data; self.fingerprint = fingerprint
        }
    }

    let options: Options
    let codec: WireCodec
    /// The REQ socket to the server; replaced by a fresh one when requests keep failing (`redial`).
    private var socket: NNGRequestSocket
    private let socketLock = NSLock()
    public let core: WorkerCore
    private let clock = ContinuousClock()
    /// One line per failed attempt at most every few seconds, however fast the attempts come.
    private let retryLog: RateLimitedLog

    public init(options: Options, codec: WireCodec) throws {
        self.options = options
        self.codec = codec
        core = WorkerCore(id: options.id, heads: options.heads, maxHeads: options.maxHeads, train: options.data.train,
                          vocabSize: options.data.vocabSize, fingerprint: options.fingerprint)
        core.waitForHeads = options.connectTimeout
        let log = core.log
        retryLog = RateLimitedLog(interval: .seconds(5), burst: 1, write: { log($0) })
        socket = try Self.dial(options, codec)
    }

    /// A REQ socket dialling the server. A send waits for a connection; bounding it makes an absent
    /// server an error in seconds, retried by `exchange`. A sent request waits for its answer up to
    /// `reconnectTimeout`: a push is answered when its round closes, which takes as long as the
    /// slowest worker, but a link that went silent (cut without a reset) must not hold it for ever.
    private static func dial(_ options: Options, _ codec: WireCodec) throws -> NNGRequestSocket {
        do {
            return try NNGRequestSocket(dial: options.server, maxMessageBytes: codec.maxMessageBytes,
                                        sendTimeout: min(options.connectTimeout, .seconds(10)),
                                        receiveTimeout: max(options.reconnectTimeout, options.connectTimeout), tls: options.tls)
        } catch let e as NNGError {
            throw LTEError("cannot dial \(options.server): \(e.reason)")
        }
    }

    private var currentSocket: NNGRequestSocket { socketLock.lock(); defer { socketLock.unlock() }; return socket }

    /// Replaces `failed` by a fresh socket (unless another request did already). nng's dialer redials
    /// by itself when an established connection breaks, but not when a new one is reset during its
    /// handshake (nanomsg/nng#970: a proxy or NAT in front of a server that is down), so a worker whose
    /// requests keep failing dials anew. Requests still in flight on `failed` fail and are retried.
    private func redial(replacing failed: NNGRequestSocket) {
        socketLock.lock()
        guard socket === failed, let fresh = try? Self.dial(options, codec) else { socketLock.unlock(); return }
        socket = fresh
        socketLock.unlock()
        failed.close()
    }

    deinit { socket.close() }

    /// The round the worker is at: it holds the weights after that merge.
    public var round: Int { core.round }
    /// What this worker needs in principle (set once it has joined a run).
    public var memoryBudget: MemoryBudget? { core.memoryBudget }

    /// Trains until the run's last round, or until `shouldStop` (a signal) or its `rounds` are done,
    /// when it leaves cleanly at the next round boundary; returns the weights hash it ends with.
    @discardableResult
    public func run(shouldStop: () -> Bool = { false }) throws -> WeightsDigest {
        try core.run(over: exchange, rounds: options.rounds, shouldStop: shouldStop)
    }

    /// The heads this worker trains (after joining: the ones the server handed it, with `--heads auto`).
    public var heads: [Int] { core.heads }

    /// One request and its decoded answer. Connection trouble is retried for `connectTimeout` before
    /// the worker has joined, `reconnectTimeout` after, counted from the first failed attempt.
    /// `message` is made anew for every attempt, with a fresh nonce: the server refuses a frame it
    /// has seen before as a replay, and the first attempt may have reached it before the connection broke.
    ///
    /// The socket's requests only time out, whatever keeps them from the server; so each failure is
    /// diagnosed (`ConnectionDiagnosis`), and a cause that retrying cannot cure — a certificate either
    /// side refuses, a server not speaking TLS — ends the worker, saying which, once two failures in
    /// a row found it: a server killed or restarting mid-handshake can look like one once.
    private func exchange(_ message: () -> WireMessage) throws -> WireMessage {
        // Before joining, trouble is most likely a wrong address or secret: wait less and say it once, at the end.
        let joined = core.weightsHash != nil
        let patience = joined ? options.reconnectTimeout : options.connectTimeout
        var failingSince: ContinuousClock.Instant?
        var lastError = ""
        var attempts = 0
        var resentAfterRefusal = false
        var finding: ConnectionDiagnosis.Finding?
        while failingSince.map({ clock.now - $0 < patience }) ?? true {
            attempts += 1
            do {
                let frame = try codec.encode(message())
                let answer: WireMessage
                let via = currentSocket
                do { answer = try codec.decode(try via.request(frame)) } catch let e as NNGError {
                    if !e.isClosed { redial(replacing: via) }
                    throw e
                }
                // nng's REQ sends a request again, byte for byte, when its connection breaks before the
                // answer came; if the first copy had arrived, the server refuses the second as a replay.
                // Once, the request goes again with a fresh nonce (a push is idempotent); a refusal that
                // repeats (a wrong secret or key) is the answer.
                if case .error(let e) = answer, e.code == .unauthorized, joined, !resentAfterRefusal {
                    resentAfterRefusal = true
                    core.log("worker \(options.id): the server refused a request (\(e.message)); sending it again with a fresh nonce")
                    continue
                }
                if joined, failingSince != nil { core.log("worker \(options.id): reached the server at \(options.server) again (attempt \(attempts))") }
                return answer
            } catch let e as NNGError {
                lastError = e.reason
                let since = failingSince ?? clock.now
                failingSince = since
                let previous = finding
                finding = ConnectionDiagnosis.diagnose(options.server, tls: options.tls)
                if let finding, finding.isPermanent, finding == previous {
                    throw LTEError("cannot reach the server at \(options.server): \(finding.reason)")
                }
                let left = max(0, (patience - (clock.now - since)).seconds)
                if joined { retryLog.note(String(format: "worker %@: the server at %@ is unreachable (%@), attempt %d; retrying for %.0f s more",
                                     options.id, options.server, finding?.reason ?? e.reason, attempts, left)) }
                Thread.sleep(forTimeInterval: 0.2)
            } catch let e as WireError {
                throw LTEError("the server at \(options.server) sent a message this worker refuses: \(e.message)")
            }
        }
        if let finding { throw LTEError("cannot reach the server at \(options.server): \(finding.reason) (tried for \(patience))") }
        throw LTEError("cannot reach the server at \(options.server) (\(lastError)); is `lte server` running there?")
    }
}
