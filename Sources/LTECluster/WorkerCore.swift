import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENet
import LTENumerics
import LTETraining

/// A worker's side of the protocol (DESIGN.md §4), without sockets, as `ServerCore` is the server's:
/// it owns some heads, trains each T local steps per round on its own shard with its own AdamW,
/// pushes their factors, applies the round's merge with the same code as the server, and checks the
/// weights hash so every node holds the same bits. When the server says its push is stale (a round
/// closed without it, or the server restarted) it rejoins and carries on with its heads as they are:
/// a head that misses a round loses nothing, its pending delta lands in the next merge it joins.
///
/// Every request goes through an `Exchange`, so the same core runs over nng (`WorkerRuntime`) or
/// straight against a `ServerCore` in tests. Rounds are counted as on the wire (`WireMessage`): the
/// worker is at round k when it holds the weights after merge k, and pushes for round k + 1.
///
/// Factors go out in the run's `lte.push_format`. With `lte.overlap` the push for round k is
/// answered on a thread of its own while the worker trains round k + 1 on the weights it has; it
/// applies merge k at the end of those steps and only then pushes round k + 1, so every node and
/// the in-process run apply each merge at the same step. The run's last round is not overlapped.
public final class WorkerCore {
    /// Sends one request and returns the server's answer. `makeRequest` is called anew for every
    /// attempt, so each carries a fresh nonce: the server refuses a frame it has seen as a replay.
    public typealias Exchange = (_ makeRequest: () -> WireMessage) throws -> WireMessage

    /// What the worker knows once it has joined a run: set at the handshake, kept at a rejoin.
    struct Session {
        let runId: String
        let descriptor: RunConfig
        /// The main weights as of `main.round`, the round this worker is at.
        let main: MainWeights
        let lanes: HeadLanes
        let replicas: [HeadReplica<BatchSampler>]
        /// The commit of the round the weights are at: the base the next push names.
        var baseCommit: String
        /// The hash of the weights held, checked against the server's at every merge.
        var weightsHash: WeightsDigest
    }

    /// One round of local training, not yet pushed.
    public struct TrainedRound {
        /// Each head's mean loss over the round's steps, in `heads` order.
        public let losses: [Float]
        public let seconds: Double
    }

    /// What became of a push.
    public enum PushOutcome: Equatable {
        /// Sent with `lte.overlap`: its merge is applied by `collect` after the next round's training.
        case sent(round: Int)
        /// Merged into this round, now held here with the server's hash.
        case merged(round: Int)
        /// The push was stale (its round closed without it, or the server restarted): the worker
        /// rejoined at the server's round, heads kept, and trains again from there.
        case rejoined(round: Int)
        /// The run's last round is merged: nothing left to push for.
        case finished
    }

    public let id: String
    /// The heads it trains: those it was started with, or (`--heads auto`) those the server handed it.
    public internal(set) var heads: [Int]
    /// `--heads auto`: with no `heads`, how many free heads to ask the server for.
    public let maxHeads: Int
    /// `--heads auto`: how long to keep asking while every head is held.
    public var waitForHeads: Duration = .zero
    let train: TokenShard
    let vocabSize: Int
    let fingerprint: Data?
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    private let clock = ContinuousClock()
    private(set) var session: Session?
    /// The push whose merge is still to come (`lte.overlap`).
    private var inFlight: PushInFlight?
    /// This worker's heads' factors as it last pushed them, and the round they were for: the answer
    /// leaves them out (the server merged exactly these bytes), so the merge is applied from here.
    private var pushed: (round: Int, factors: [Int: PushedFactors])?
    /// How long the last merge kept this worker from training (push sent, or training done if
    /// later, to answer applied): reported with the next push.
    private var lastMergeWait: Duration = .zero

    /// `train` is the run's training token stream (each head reads its own shard of it); `fingerprint`
    /// the worker's own config fingerprint, if it was started with one (the server refuses another).
    public init(id: String, heads: [Int], maxHeads: Int = 0, train: TokenShard, vocabSize: Int, fingerprint: Data?) {
        self.id = id; self.heads = heads; self.maxHeads = maxHeads; self.train = train; self.vocabSize = vocabSize; self.fingerprint = fingerprint
    }

    /// The round this worker is at (0 before it has joined).
    public var round: Int { session?.main.round ?? 0 }
    /// The hash of the weights it holds (nil before it has joined).
    public var weightsHash: WeightsDigest? { session?.weightsHash }
    /// The commit its weights are at: the base its next push names.
    public var baseCommit: String { session?.baseCommit ?? "" }
    /// Whether the run's last round is merged here.
    public var isFinished: Bool { session.map { s in s.descriptor.rounds.map { s.main.round >= $0 } ?? false } ?? false }

    /// What this worker needs in principle (once it has joined a run).
    public var memoryBudget: MemoryBudget? {
        session.map { s in .worker(s.descriptor.model, lora: s.descriptor.lte, heads: heads.count, totalHeads: s.descriptor.totalHeads,
                                   batch: s.descriptor.training.batchSize, lanes: s.lanes.count, foldScratch: s.lanes.scratchCount,
                                   recompute: s.descriptor.training.recompute, holdsFrozenMaster: s.main.holdsFrozenMaster) }
    }

    /// The main weights this worker holds (once it has joined).
    public var main: MainWeights? { session?.main }

    /// Each of this worker's heads' current factors (adapter modes, once it has joined), in `heads` order.
    public var headFactors: [FloatBuffer] { session?.replicas.compactMap { $0.head?.factors } ?? [] }

    // MARK: - The loop

    /// Joins, then trains, pushes and merges until the run's last round; returns the final weights hash.
    /// With `shouldStop` (a signal) or after `rounds` merges of its own it leaves cleanly at the next
    /// round boundary, handing its heads' state to the server for the next worker (`leave`).
    @discardableResult
    public func run(over exchange: @escaping Exchange, rounds: Int? = nil, shouldStop: () -> Bool = { false }) throws -> WeightsDigest {
        try join(over: exchange)
        var merged = 0
        while !isFinished {
            if shouldStop() || rounds.map({ merged >= $0 }) == true {
                // A push still in flight (overlap) is merged first, so the state handed over is merged too.
                if try collect(over: exchange) == .finished { break }
                try leave(over: exchange); break
            }
            let trained = try trainRound()
            let collected = try collect(over: exchange)
            if collected == .finished { break }
            if case .merged = collected { merged += 1 }
            let outcome = try push(trained, over: exchange)
            if outcome == .finished { break }
            if case .merged = outcome { merged += 1 }
        }
        return try joined().weightsHash
    }

    /// Joins the run, or rejoins it keeping this worker's heads as they are: takes the run's
    /// settings, the main weights, every head's factors at its last merge and, on a first join, this
    /// worker's heads' latest factors (so a restarted worker resumes its heads rather than restarting them).
    public func join(over exchange: Exchange) throws {
        let kept = session
        let joined = try welcome(over: exchange, into: kept?.main)
        let s: Session
        if let kept {
            s = Session(runId: joined.runId, descriptor: kept.descriptor, main: kept.main, lanes: kept.lanes, replicas: kept.replicas,
                        baseCommit: joined.baseCommit, weightsHash: joined.weightsHash)
        } else {
            let d = joined.descriptor, t = d.training, main = joined.main
            let lanes = HeadLanes(heads: heads.count, model: d.model, batch: t.batchSize, recompute: t.recompute, main: main.model.params, frozen: main.frozenStore,
                                  layout: main.model.layout, adapters: main.layout, foldsHeads: true)
            let replicas = try heads.enumerated().map { i, h in
                var source = try BatchSampler.forHead(h, of: d.totalHeads, train: train, batchSize: t.batchSize,
                                                      contextLength: d.model.contextLength, seed: t.seed)
                source.skip(batches: main.round * d.mergeEvery)
                return try HeadReplica(id: h, main: main, training: t, source: source, activations: lanes.activations(forHead: i),
                                       frozenSource: lanes.frozenSource(forHead: i))
            }
            for r in replicas {
                guard let f = joined.factors[r.id], let head = r.head else { continue }
                head.factors.copy(from: f)
            }
            s = Session(runId: joined.runId, descriptor: d, main: main, lanes: lanes, replicas: replicas,
                        baseCommit: joined.baseCommit, weightsHash: joined.weightsHash)
        }
        for r in s.replicas {
            // A push in flight is void once the worker rejoins: its heads start again from their last merge.
            r.head?.pushWasNotMerged()
            if let m = s.main.lastMerged[r.id] { r.head?.setMerged(from: m.pointer) }
            r.adopt(s.main.model.params)
        }
        // Open membership: a head another worker handed over continues from its whole state.
        if kept == nil {
            for r in s.replicas {
                guard let state = joined.states[r.id] else { continue }
                guard state.replicaMoments.m.count == r.replicaMomentCount else {
                    throw LTEError("the server handed over head \(r.id) with \(state.replicaMoments.m.count) replica moments, this model has \(r.replicaMomentCount)")
                }
                r.restore(state)
            }
        }
        session = s
        log("worker \(id): joined run \(s.runId) at round \(s.main.round) with heads \(heads)")
    }

    /// Trains every head `merge_every` local steps from the weights this worker holds: those of the
    /// round it is at, or with a push in flight, the round before the one being merged.
    public func trainRound() throws -> TrainedRound {
        let s = try joined()
        let d = s.descriptor
        let began = clock.now
        var losses = [Double](repeating: 0, count: s.replicas.count)
        // Steps count from 0 over the whole run: the training for round k is steps (k − 1)·T …
        let firstStep = (s.main.round + (inFlight == nil ? 0 : 1)) * d.mergeEvery
        for step in 0..<d.mergeEvery {
            s.lanes.step(s.replicas, lr: d.training.schedule.rate(at: firstStep + step), addingLossesTo: &losses)
        }
        return TrainedRound(losses: losses.map { Float($0 / Double(d.mergeEvery)) }, seconds: (clock.now - began).seconds)
    }

    /// Pushes a trained round for the next round. Without `lte.overlap` (and for the run's last
    /// round) waits for the server's merge and applies it, or rejoins when the push was stale; with
    /// it, returns `.sent` at once and `collect` applies the merge later.
    public func push(_ trained: TrainedRound, over exchange: @escaping Exchange) throws -> PushOutcome {
        precondition(inFlight == nil, "push before the merge in flight is collected")
        let s = try joined()
        let d = s.descriptor
        let round = nextRound(s)
        let (id, heads) = (id, heads)
        let tokens = s.replicas.reduce(0) { $0 + $1.tokensPerStep } * d.mergeEvery
        let trainMicroseconds = Int(trained.seconds * 1e6), waitMicroseconds = Int(lastMergeWait.seconds * 1e6)
        func message(_ tensors: [WireTensor]) -> WireMessage {
            .push(PushMessage(workerId: id, round: round, baseCommit: s.baseCommit, headIds: heads, headLosses: trained.losses, tokens: tokens,
                              nonce: ReplayGuard.freshNonce(), trainMicroseconds: trainMicroseconds,
                              previousWaitMicroseconds: waitMicroseconds, tensors: tensors))
        }
        // With overlap, what each replica pushed is kept: it keeps its progress since (HeadReplica.adopt).
        let replicated = d.lte.overlap ? s.replicas.map { s.main.packReplicated($0.model.params.pointer) } : nil
        // Quantized once, now: every attempt sends these bytes, and the merge is applied from them.
        let own = pushedFactors(s)
        pushed = (round, own)
        if d.lte.overlap, d.rounds.map({ round < $0 }) ?? true, let replicated {
            // Captured now, on this thread: the training that follows moves the factors.
            let tensors = pushTensors(s, own)
            inFlight = PushInFlight(round: round, replicated: replicated) { try exchange { message(tensors) } }
            // Until merge `round` is applied, each head counts what it pushed at the merge's weight.
            if d.lte.merge == .resetless {
                for r in s.replicas { if let h = r.head, let f = own[r.id] { h.awaitMerge(of: f.values, totalHeads: s.main.totalHeads, extrapolation: d.lte.overlapExtrapolation) } }
            }
            return .sent(round: round)
        }
        let pushedAt = clock.now
        // The push's tensors are made inside the closure, so they are gone once it is encoded:
        // the round's peak holds the frame and nng's copy of it, not a third copy besides.
        let reply = try exchange { message(self.pushTensors(s, own)) }
        let outcome = try settle(reply, round: round, trained: trained, replicated: replicated, over: exchange)
        lastMergeWait = clock.now - pushedAt
        return outcome
    }

    /// Applies the merge of the push in flight (`lte.overlap`), if there is one: called at the end
    /// of the next round's steps, before the next push, however early the answer came.
    @discardableResult
    public func collect(over exchange: @escaping Exchange) throws -> PushOutcome? {
        guard let pending = inFlight else { return nil }
        inFlight = nil
        let ready = clock.now
        let outcome = try settle(try pending.answer(), round: pending.round, trained: nil, replicated: pending.replicated, over: exchange)
        lastMergeWait = clock.now - ready
        return outcome
    }

    /// Whether a push is awaiting its merge.
    public var hasPushInFlight: Bool { inFlight != nil }

    /// What the server's answer to the push for `round` makes of this worker.
    private func settle(_ reply: WireMessage, round: Int, trained: TrainedRound?, replicated: [FloatBuffer]?,
                        over exchange: Exchange) throws -> PushOutcome {
        switch reply {
        case .roundResult(let result):
            try apply(result, keepingProgressSince: replicated)
            let hash = try joined().weightsHash
            if let trained {
                log(String(format: "worker %@: round %d | loss %.4f | train %.2f s | %@", id, result.round,
                           Double(trained.losses.reduce(0, +)) / Double(max(1, trained.losses.count)), trained.seconds, hash.short))
            } else {
                log("worker \(id): round \(result.round) merged | \(hash.short)")
            }
            return .merged(round: result.round)
        case .error(let e) where e.code == .runFinished:
            return .finished
        case .error(let e) where e.code == .staleRound:
            log("worker \(id): \(e.message)")
            try join(over: exchange)
            return .rejoined(round: self.round)
        case .error(let e):
            throw LTEError("the server refused the push for round \(round): \(e.message)")
        default:
            throw LTEError("the server answered a push with \(reply.type)")
        }
    }

    // MARK: - Steps

    /// The round a push made now is for: the merge after the one this worker holds.
    private func nextRound(_ s: Session) -> Int { s.main.round + 1 }

    private func joined() throws -> Session {
        guard let session else { throw LTEError("worker \(id) has not joined a run") }
        return session
    }

    /// The round's merge, applied locally: same inputs, same code, same bits as the server. With
    /// `replicated` (overlap), each merged replica keeps its progress since it pushed those values.
    private func apply(_ result: RoundResultMessage, keepingProgressSince replicated: [FloatBuffer]?) throws {
        var s = try joined()
        guard result.round == nextRound(s) else {
            throw LTEError("the server answered the push for round \(nextRound(s)) with the result of round \(result.round)")
        }
        let main = s.main
        let count = main.layout?.count ?? 0
        let format = s.descriptor.lte.pushFormat
        // This worker's own heads come without their factors: it merges the bytes it pushed. Without
        // the float32 frozen weights there is no W to apply the others' delta to: the answer carries
        // the requantized layers instead, and only this worker's own heads' factors are needed.
        let own = pushed.flatMap { $0.round == result.round ? $0.factors : nil } ?? [:]
        var factors: [Int: FloatBuffer] = [:]
        for h in result.headsMerged where main.holdsFrozenMaster || heads.contains(h) {
            if let mine = own[h], !result.tensors.has(WireNames.factors(h)) { factors[h] = mine.values; continue }
            factors[h] = try result.tensors.pushedFactors(WireNames.factors(h), count: count, format: format).values
        }
        let mean = try result.tensors.replicated(WireNames.replicatedMean, count: main.replicatedCount, format: format,
                                                 base: main.packReplicated(main.model.params.pointer))
        main.apply(factors: factors.map { ($0.key, $0.value) }, replicatedMean: mean)
        if main.holdsFrozenMaster {
            let hash = main.weightsHash
            guard hash == result.weightsHash else {
                throw LTEError("after round \(result.round) this worker's weights hash \(hash.short) differs from the server's \(result.weightsHash.short)")
            }
        } else if let q = main.quantizedFrozen {
            // No W here to merge or hash: the frozen weights are the server's own requantized bytes,
            // and the replicated tensors its mean, so this worker holds what the server holds.
            main.receiveFrozen(try q.entries.map { e in try result.tensors.quantized(WireNames.frozen(e.name), count: e.count, format: q.format, blockSize: QuantizedFormat.blockSize) })
        }
        try checkFrozen(main, against: result.frozenHash, "after round \(result.round)")
        s.weightsHash = result.weightsHash
        s.baseCommit = result.commitId
        let rule = s.descriptor.lte.merge
        for (k, r) in s.replicas.enumerated() {
            let merged = result.headsMerged.contains(r.id)
            if merged, let f = factors[r.id], let h = r.head {
                if rule == .resetless { h.setMerged(from: f.pointer) } else { h.didMerge(rule: .resetB) }
            } else {
                r.head?.pushWasNotMerged()
            }
            if merged, let replicated { r.adopt(main.model.params, keepingProgressSince: replicated[k]) } else { r.adopt(main.model.params) }
        }
        session = s
    }
}
