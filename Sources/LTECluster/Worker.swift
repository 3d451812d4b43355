import Foundation
import LTEBase
import LTEData
import LTENet
import LTETraining

/// A worker process's network side (DESIGN.md §4): a REQ socket dialled to the server, over which it
/// drives a `WorkerCore`. Connection trouble is retried until `connectTimeout`; a restarted server is
/// found again by nng's own reconnect, and the core resynchronises with it.
public final class WorkerRuntime {
    public struct Options {
        public var server: String
        public var id: String
        public var heads: [Int]
        public var data: TokenDataset
        /// The worker's own config fingerprint, if it was started with one (checked by the server).
        public var fingerprint: Data?
        /// How long to keep trying to reach a server that does not answer.
        public var connectTimeout: Duration = .seconds(60)
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
    let socket: NNGRequestSocket
    public let core: WorkerCore
    private let clock = ContinuousClock()

    public init(options: Options, codec: WireCodec) throws {
        self.options = options
        self.codec = codec
        core = WorkerCore(id: options.id, heads: options.heads, maxHeads: options.maxHeads, train: options.data.train,
                          vocabSize: options.data.vocabSize, fingerprint: options.fingerprint)
        core.waitForHeads = options.connectTimeout
        do {
            // A send waits for a connection; bounding it by the connect timeout makes an absent server
            // an error in seconds, while a connected push may wait for its round as long as it takes.
            socket = try NNGRequestSocket(dial: options.server, maxMessageBytes: codec.maxMessageBytes,
                                          sendTimeout: min(options.connectTimeout, .seconds(10)), receiveTimeout: nil, tls: options.tls)
        } catch let e as NNGError {
            throw LTEError("cannot dial \(options.server): \(e.reason)")
        }
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

    /// One request and its decoded answer; connection trouble is retried until `connectTimeout`.
    /// `message` is made anew for every attempt, with a fresh nonce: the server refuses a frame it
    /// has seen before as a replay, and the first attempt may have reached it before the connection broke.
    ///
    /// The socket's requests only time out, whatever keeps them from the server; so each failure is
    /// diagnosed (`ConnectionDiagnosis`), and a cause that retrying cannot cure — a certificate either
    /// side refuses, a server not speaking TLS — ends the worker, saying which, once two failures in
    /// a row found it: a server killed or restarting mid-handshake can look like one once.
    private func exchange(_ message: () -> WireMessage) throws -> WireMessage {
        let deadline = clock.now + options.connectTimeout
        var lastError = ""
        var finding: ConnectionDiagnosis.Finding?
        while clock.now < deadline {
            do {
                let frame = try codec.encode(message())
                return try codec.decode(try socket.request(frame))
            } catch let e as NNGError {
                lastError = e.reason
                let previous = finding
                finding = ConnectionDiagnosis.diagnose(options.server, tls: options.tls)
                if let finding, finding.isPermanent, finding == previous {
                    throw LTEError("cannot reach the server at \(options.server): \(finding.reason)")
                }
                Thread.sleep(forTimeInterval: 0.2)
            } catch let e as WireError {
                throw LTEError("the server at \(options.server) sent a message this worker refuses: \(e.message)")
            }
        }
        if let finding { throw LTEError("cannot reach the server at \(options.server): \(finding.reason) (tried for \(options.connectTimeout))") }
        throw LTEError("cannot reach the server at \(options.server) (\(lastError)); is `lte server` running there?")
    }
}
