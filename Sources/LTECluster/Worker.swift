import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENet
import LTENumerics
import LTETraining

/// A worker process (DESIGN.md §4): owns some heads, trains each T local steps per round on its own
/// shard with its own AdamW, pushes their factors, applies the round's merge with the same code as
/// the server, and checks the weights hash so every node holds the same bits. It reconnects and
/// resynchronises by itself when the server restarts or a round closed without it.
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
        public init(server: String, id: String, heads: [Int], data: TokenDataset, fingerprint: Data?) {
            self.server = server; self.id = id; self.heads = heads; self.data = data; self.fingerprint = fingerprint
        }
    }

    let options: Options
    let codec: WireCodec
    let socket: NNGRequestSocket
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    private let clock = ContinuousClock()

    // Set at the handshake.
    private var descriptor: RunConfig!
    private var main: MainWeights!
    private var replicas: [HeadReplica<BatchSampler>] = []
    private var lanes: HeadLanes?
    public private(set) var round = 0
    public private(set) var lastHash = ""
    /// The commit this worker's weights are at: the base its next push names.
    public private(set) var baseCommit = ""

    public init(options: Options, codec: WireCodec) throws {
        self.options = options
        self.codec = codec
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

    /// One request and its decoded answer; connection trouble is retried until `connectTimeout`.
    /// `message` is made anew for every attempt, with a fresh nonce: the server refuses a frame it
    /// has seen before as a replay, and the first attempt may have reached it before the connection broke.
    private func exchange(_ message: () -> WireMessage) throws -> WireMessage {
        let deadline = clock.now + options.connectTimeout
        var lastError = ""
        while clock.now < deadline {
            do {
                let frame = try codec.encode(message())
                return try codec.decode(try socket.request(frame))
            } catch let e as NNGError {
                lastError = e.reason
                Thread.sleep(forTimeInterval: 0.2)
            } catch let e as WireError {
                throw LTEError("the server at \(options.server) sent a message this worker refuses: \(e.message)")
            }
        }
        throw LTEError("cannot reach the server at \(options.server) (\(lastError)); is `lte server` running there?")
    }

    /// Joins (or rejoins) the run: weights, every head's factors at its last merge, this worker's heads.
    func handshake(keepFactors: Bool) throws {
        let joined = try welcome(keepFactors: keepFactors)
        let d = descriptor!
        if replicas.isEmpty || !keepFactors {
            let t = d.training
            lanes = HeadLanes(heads: options.heads.count, model: d.model, batch: t.batchSize, main: main.model.params, folds: true)
            replicas = try options.heads.enumerated().map { i, h in
                var source = try BatchSampler.forHead(h, of: d.totalHeads, train: options.data.train, batchSize: t.batchSize,
                                                      contextLength: d.model.contextLength, seed: t.seed)
                source.skip(batches: joined.round * d.mergeEvery)
                return try HeadReplica(id: h, main: main, training: t, source: source, activations: lanes!.activations(forHead: i),
                                       frozenSource: lanes!.frozenSource(forHead: i))
            }
            for r in replicas {
                guard let f = joined.factors[r.id] else { continue }
                f.withUnsafeBufferPointer { r.head!.factors.pointer.update(from: $0.baseAddress!, count: f.count) }
            }
        }
        for r in replicas {
            if let m = main.lastMerged[r.id] { r.head!.setMerged(from: m.pointer) }
            r.adopt(main.model.params)
        }
        log("worker \(options.id): joined run \(joined.runId) at round \(joined.round) with heads \(options.heads)")
    }

    /// Says hello and takes the welcome: the run's settings, the main weights and last-merged
    /// factors (into `main`), and this worker's heads' current factors. Returning drops the message,
    /// as large as the weights, before the heads' own memory is allocated (the worker's peak RSS).
    private func welcome(keepFactors: Bool) throws -> (runId: String, round: Int, factors: [Int: [Float]]) {
        let reply = try exchange {
            .hello(HelloMessage(workerId: options.id, headIds: options.heads,
                                configFingerprint: options.fingerprint ?? Data(count: 32), nonce: ReplayGuard.freshNonce()))
        }
        guard case .welcome(let w) = reply else {
            if case .error(let e) = reply { throw LTEError("the server refused worker \(options.id): \(e.message)") }
            throw LTEError("the server answered hello with \(reply.type)")
        }
        let d = try RunConfig.fromServer(w.configJSON)
        guard d.model.vocabSize >= options.data.vocabSize else {
            throw LTEError("data \(options.data.directory.path) has a vocabulary of \(options.data.vocabSize), the run's model \(d.model.vocabSize)")
        }
        if descriptor == nil || !keepFactors {
            descriptor = d
            main = try MainWeights(model: d.model, lora: d.lte, totalHeads: d.totalHeads, seed: d.training.seed)
        }
        let values = try w.tensors.flat(WireNames.main, count: main.model.params.count)
        values.withUnsafeBufferPointer { main.model.params.pointer.update(from: $0.baseAddress!, count: values.count) }
        for h in 0..<d.totalHeads where w.tensors.has(WireNames.merged(h)) {
            let m = try w.tensors.flat(WireNames.merged(h), count: main.layout!.count)
            m.withUnsafeBufferPointer { main.setLastMerged(head: h, from: $0.baseAddress!) }
        }
        main.setRound(w.round)
        round = w.round
        baseCommit = w.baseCommit
        // The weights it now holds, e.g. the final ones when it rejoins a run that ended meanwhile.
        lastHash = weightsHash(main.model)
        var factors: [Int: [Float]] = [:]
        for h in options.heads where w.tensors.has(WireNames.factors(h)) {
            factors[h] = try w.tensors.flat(WireNames.factors(h), count: main.layout!.count)
        }
        return (w.runId, w.round, factors)
    }

    /// What this worker needs in principle (set once it has joined a run).
    public var memoryBudget: MemoryBudget? {
        descriptor.map { .worker($0.model, lora: $0.lte, heads: options.heads.count, totalHeads: $0.totalHeads,
                                 batch: $0.training.batchSize, lanes: lanes?.count ?? 1, folds: lanes?.folds ?? false) }
    }

    /// Trains until the run's last round; returns the final weights hash.
    @discardableResult
    public func run() throws -> String {
        try handshake(keepFactors: false)
        let d = descriptor!
        while d.rounds == nil || round < d.rounds! {
            let began = clock.now
            var losses = [Double](repeating: 0, count: replicas.count)
            for s in 0..<d.mergeEvery {
                let lr = d.training.schedule.rate(at: round * d.mergeEvery + s)
                lanes!.step(replicas, lr: lr, addingLossesTo: &losses)
            }
            let trainSeconds = (clock.now - began).seconds
            // The push's tensors are made inside the closure, so they are gone once it is encoded:
            // the round's peak holds the frame and nng's copy of it, not a third copy besides.
            let reply = try exchange {
                var tensors: [WireTensor] = []
                for r in replicas {
                    if let h = r.head { tensors.append(WireTensor(name: WireNames.factors(r.id), buffer: h.factors)) }
                    tensors.append(WireTensor(name: WireNames.replicated(r.id), buffer: main.packReplicated(r.model.params.pointer)))
                }
                return .push(PushMessage(workerId: options.id, round: round, baseCommit: baseCommit, headIds: options.heads,
                                         headLosses: losses.map { Float($0 / Double(d.mergeEvery)) },
                                         tokens: replicas.reduce(0) { $0 + $1.tokensPerStep } * d.mergeEvery,
                                         nonce: ReplayGuard.freshNonce(), tensors: tensors))
            }
            switch reply {
            case .roundResult(let result):
                try apply(result)
                log(String(format: "worker %@: round %d | loss %.4f | train %.2f s | wait %.2f s | %@", options.id, result.round + 1,
                           losses.reduce(0, +) / Double(losses.count * d.mergeEvery), trainSeconds,
                           (clock.now - began).seconds - trainSeconds, String(lastHash.prefix(12))))
            case .error(let e) where e.code == .staleRound:
                if d.rounds != nil, e.message.contains("finished") { return lastHash }
                log("worker \(options.id): \(e.message)")
                try handshake(keepFactors: true)
            case .error(let e):
                throw LTEError("the server refused the push of round \(round): \(e.message)")
            default:
                throw LTEError("the server answered a push with \(reply.type)")
            }
        }
        return lastHash
    }

    /// The round's merge, applied locally: same inputs, same code, same bits as the server.
    private func apply(_ result: RoundResultMessage) throws {
        guard result.round == round else {
            throw LTEError("the server answered the push of round \(round) with the result of round \(result.round)")
        }
        let count = main.layout?.count ?? 0
        let factors = try result.headsMerged.map { h in try FloatBuffer(result.tensors.flat(WireNames.factors(h), count: count)) }
        let mean = try result.tensors.flat(WireNames.replicatedMean, count: main.replicatedCount)
        main.apply(factors: zip(result.headsMerged, factors).map { ($0, $1) }, replicatedMean: mean)
        let hash = weightsHash(main.model)
        guard Data(hexString: hash) == result.weightsHash else {
            throw LTEError("after round \(result.round) this worker's weights hash \(hash.prefix(12)) differs from the server's \(result.weightsHash.hexString.prefix(12))")
        }
        lastHash = hash
        baseCommit = result.commitId
        let rule = descriptor.lte.merge
        for r in replicas {
            if let i = result.headsMerged.firstIndex(of: r.id), let h = r.head {
                if rule == .resetless { h.setMerged(from: factors[i].pointer) } else { h.didMerge(rule: .resetB) }
            }
            r.adopt(main.model.params)
        }
        round = result.round + 1
    }
}
