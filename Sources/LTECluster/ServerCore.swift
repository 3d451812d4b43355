import Foundation
import LTEModel
import LTENet
import LTENumerics
import LTEStore
import LTETraining

/// The parameter server's round logic (DESIGN.md §4), without sockets: one call per request, safe
/// from many threads at once. A push blocks its caller until its round closes — when every expected
/// head is in, or at a quorum once the round has been open `roundTimeout` — and then returns that
/// round's result, so the request thread can answer it.
///
/// Rounds (see `WireMessage`): round k is the k-th merge, round 0 the initial weights. The server
/// is at round `main.round`, the last merged one; the open round — the one pushes are for — is
/// `openRound`, the next.
///
/// The server is built from the parts it is given: the `committer` makes each closed round durable
/// (and says where a restarted server resumes), then the `observers` hear of it, in their order.
public final class ServerCore: @unchecked Sendable {
    public struct Options: Sendable {
        public var quorum: Int
        public var roundTimeout: Duration
        /// A head whose update is over this multiple of the round's median is left out of the merge
        /// (`HeadUpdateScreen`).
        public var maxUpdateRatio: Double
        /// Largest |value| a push may carry; nil: derived from the model (`defaultMaxAbsValue`).
        public var maxAbsValue: Float?
        /// How far a hello's time may be from the server's clock (`FreshnessGuard`).
        public var helloWindow: Duration
        /// Open membership: how long a worker may go unheard (and not waiting on a round) before its
        /// heads are handed on, and the run's identities (nil: any worker name is accepted).
        public var leaseTimeout: Duration
        public var identities: (any IdentityVerifier)?
        /// Once the last round is merged: how long to stay up for heads that missed it (a worker whose
        /// link was cut) to fetch the final weights; nil: `roundTimeout`.
        public var finalWait: Duration?
        /// No round closes early (on "every held head is in") before this many heads have been held
        /// at once: a run whose workers start together (`lte launch`) then merges every head from
        /// round 1, as the in-process run does, however the processes' start-up times fall.
        public var awaitHeads: Int
        public init(quorum: Int, roundTimeout: Duration, maxUpdateRatio: Double = 100, maxAbsValue: Float? = nil,
                    helloWindow: Duration = .seconds(300), leaseTimeout: Duration = .seconds(120), identities: (any IdentityVerifier)? = nil,
                    finalWait: Duration? = nil, awaitHeads: Int = 0) {
            self.quorum = quorum; self.roundTimeout = roundTimeout; self.maxUpdateRatio = maxUpdateRatio
            self.maxAbsValue = maxAbsValue; self.helloWindow = helloWindow
            self.leaseTimeout = leaseTimeout; self.identities = identities; self.finalWait = finalWait; self.awaitHeads = awaitHeads
        }
    }

    public let descriptor: RunConfig
    public let options: Options
    public let main: MainWeights
    let committer: RoundCommitter
    let observers: [RoundObserver]
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    /// A head in the open round: its factors as pushed (sent back as they came, so a node
    /// dequantizes the very bytes the server did), its worker's train and wait times (DESIGN.md §8),
    /// and `replacedLatest`, what `latestFactors` held before it, restored if the head is left out.
    struct Pending {
        let worker: String; let factors: PushedFactors?; let replicated: FloatBuffer; let loss: Float
        let trainSeconds: Double; let waitSeconds: Double; let replacedLatest: FloatBuffer?
    }
    private struct Outcome {
        let message: RoundResultMessage; let heads: Set<Int>; let excluded: [Int: RoundRecord.Exclusion]
        var waiters: Int; var answered = 0; var bytesOut = 0; let closedAt: ContinuousClock.Instant
    }

    let lock = NSCondition()
    private let clock = ContinuousClock()
    var open: [Int: Pending] = [:]
    private var openedAt: ContinuousClock.Instant?
    private var lastClosedAt: ContinuousClock.Instant?
    private var openWaiters = 0
    /// Heads pushed for the open round but left out of its merge: worker and why (`HeadUpdateScreen`).
    var openExclusions: [Int: RoundRecord.Exclusion] = [:]
    private var bytesIn = 0
    var tokensIn = 0
    var latestFactors: [Int: FloatBuffer]
    /// Whether `options.awaitHeads` heads have been held at once (it stays true once they have).
    var awaitedHeadsHeld = false
    /// Recent rounds' answers, by round, for pushes sent again after their round closed.
    private var outcomes: [Int: Outcome] = [:]
    /// The commit of each round this server has seen, by round (the one it resumed at included).
    private var commitOfRound: [Int: String]
    public private(set) var totalTokens: Int
    public private(set) var finished = false
    /// Why the server stopped serving rounds, if a round could not be recorded: its weights moved but
    /// the history did not, so it must not answer that round; restarted, it resumes from the history.
    public private(set) var failure: String?
    /// Refuses a captured push sent again (the MAC binds its round and nonce).
    private let replayGuard = ReplayGuard()
    /// Refuses a captured hello sent again, in this round or any later one (the MAC binds its time).
    private let helloGuard: FreshnessGuard
    let screen: HeadUpdateScreen
    /// Once the run is finished: the heads known to hold the final weights (merged in the last round
    /// and answered, or welcomed since), and when it finished. The server stays up until every head
    /// is in that set, or `finalWait` has passed, so a worker that missed the end can catch up.
    private var finalHeads: Set<Int> = []
    private var finishedAt: ContinuousClock.Instant?
    let validation: MessageValidation
    private let runId: String
    /// When the first worker joined: the first round's wall time runs from here.
    private var started: ContinuousClock.Instant?
    /// The last closed round's longest worker train and wait times, for `lte status`.
    private var lastWorkerTimes: (train: Double, wait: Double)?
    /// Who holds which head, handovers and leases (open membership); used under `lock`.
    let membership: Membership

    /// A server at `committer`'s head: `main` must already hold that round's weights (the committer
    /// restores them when it opens an existing history).
    public init(descriptor: RunConfig, options: Options, main: MainWeights, runId: String,
                committer: RoundCommitter, observers: [RoundObserver] = []) {
        self.descriptor = descriptor
        self.options = options
        self.main = main
        self.runId = runId
        self.committer = committer
        self.observers = observers
        validation = MessageValidation(descriptor: descriptor, factorCount: main.layout?.count, replicatedCount: main.replicatedCount,
                                       maxAbsValue: options.maxAbsValue ?? Self.defaultMaxAbsValue(main))
        helloGuard = FreshnessGuard(window: options.helloWindow)
        screen = HeadUpdateScreen(main: main, maxRatio: options.maxUpdateRatio)
        membership = Membership(totalHeads: descriptor.totalHeads, leaseTimeout: options.leaseTimeout, identities: options.identities)
        let head = committer.committedHead
        main.setRound(head.round)
        commitOfRound = [head.round: head.commit]
        latestFactors = head.latestFactors
        totalTokens = head.tokens
        if let rounds = descriptor.rounds, head.round >= rounds { finished = true; finishedAt = clock.now }
    }

    /// The last merged round.
    public var round: Int { lock.lock(); defer { lock.unlock() }; return main.round }
    /// The last merged round's commit: the base every push for the open round names.
    public var headCommit: String { lock.lock(); defer { lock.unlock() }; return commitOfRound[main.round] ?? "" }
    /// The round pushes are for: the merge after the last one (lock held).
    var openRound: Int { main.round + 1 }

    // MARK: - Requests

    /// Handles one decoded request; `frameBytes` is its size on the wire. Blocks for pushes.
    public func handle(_ message: WireMessage, frameBytes: Int) -> WireMessage {
        switch message {
        case .hello(let h): return welcome(h)
        case .push(let p): return push(p, frameBytes: frameBytes)
        case .statusRequest: lock.lock(); defer { lock.unlock() }; return status()
        case .leave(let l): return leave(l)
        default:
            return refuse(.unexpected, "a server answers hello, push and status requests, not \(message.type)")
        }
    }

    func refuse(_ code: ErrorCode, _ why: String) -> WireMessage {
        log("refused: \(why)")
        return .error(ErrorMessage(code: code, message: why))
    }

    /// Admits a message's (worker, round, nonce) once; a second sighting is a replay.
    func admit(_ what: String, worker: String, round: Int, nonce: UInt64) -> WireMessage? {
        do { try replayGuard.admit(peer: worker, round: round, nonce: nonce) } catch let e as WireError {
            return refuse(.unauthorized, "\(what): \(e.message)")
        } catch { return refuse(.unauthorized, "\(what): \(error)") }
        return nil
    }

    private func welcome(_ h: HelloMessage) -> WireMessage {
        do throws(MessageValidation.Refusal) { try validation.checkHello(h) } catch { return refuse(error.code, "hello from \(h.workerId.prefix(80).debugDescription): \(error.message)") }
        do { try helloGuard.admit(peer: h.workerId, sentAt: h.sentAt, nonce: h.nonce) } catch {
            return refuse(.unauthorized, "hello from \(h.workerId): \((error as? WireError)?.message ?? "\(error)")")
        }
        let fingerprint = descriptor.fingerprint
        if h.configFingerprint != Data(count: 32), h.configFingerprint != fingerprint {
            return refuse(.configMismatch, "worker \(h.workerId) was started with a config that differs from the server's (model, training or lte section)")
        }
        lock.lock(); defer { lock.unlock() }
        // --- open membership: the heads this worker gets, and how each starts ---
        sweepMembership()
        let given: [(head: Int, start: Membership.Start, deposit: Membership.Deposit?)]
        do throws(MessageValidation.Refusal) { given = try membership.assign(worker: h.workerId, asked: h.headIds, maxHeads: h.maxHeads) } catch {
            return refuse(error.code, error.message)
        }
        if started == nil { started = clock.now }
        var tensors = [WireTensor(name: WireNames.main, buffer: main.model.params)]
        if let outer = main.outer { tensors.append(WireTensor(name: WireNames.velocity, buffer: outer.packedVelocity())) }
        for (head, b) in main.lastMerged.enumerated() { if let b { tensors.append(WireTensor(name: WireNames.merged(head), buffer: b)) } }
        var steps: [Int] = []
        for g in given {
            switch g.start {
            case .handedOver:
                tensors += HeadStateNames.tensors(head: g.head, g.deposit!.state)
                steps.append(g.deposit!.state.optimizerStep)
            case .lastMerge:
                let m = factorsOfLastMerge(head: g.head)
                if let m { tensors.append(WireTensor(name: WireNames.factors(g.head), buffer: m)) }
                latestFactors[g.head] = m
                steps.append(0)
            case .asBefore:
                // Reset-B: the head as its merge left it (B = 0), not as pushed, or its B would be merged twice.
                let f = descriptor.lte.merge == .resetB ? factorsOfLastMerge(head: g.head) : latestFactors[g.head]
                if let f { tensors.append(WireTensor(name: WireNames.factors(g.head), buffer: f)) }
                steps.append(0)
            }
        }
        let heads = given.map(\.head)
        let config = (try? descriptor.encoded()) ?? Data()
        if finished { finalHeads.formUnion(heads) }
        log("worker \(h.workerId) joined with heads \(heads) at round \(main.round)"
            + (given.contains { $0.start == .handedOver } ? " (handed-over state for \(given.filter { $0.start == .handedOver }.map(\.head)))" : ""))
        return .welcome(WelcomeMessage(runId: runId, round: main.round, baseCommit: commitOfRound[main.round] ?? "", configJSON: config, tensors: tensors,
                                       headIds: heads, optimizerSteps: steps, frozenHash: main.frozenHash))
    }

    /// The server's state for `lte status` (lock held).
    func status() -> WireMessage {
        sweepMembership()
        let inHeads = open.keys.sorted()
        let missing = (0..<descriptor.totalHeads).filter { open[$0] == nil }
        var fields = ["total_heads": String(descriptor.totalHeads), "tokens": String(totalTokens), "finished": String(finished)]
        if let r = descriptor.rounds { fields["rounds"] = String(r) }
        if let t = lastWorkerTimes {
            fields["worker_train_ms"] = String(format: "%.1f", t.train * 1000)
            fields["worker_wait_ms"] = String(format: "%.1f", t.wait * 1000)
        }
        fields.merge(membership.statusFields()) { a, _ in a }
        return .status(StatusMessage(round: main.round, headsIn: inHeads, lossesIn: inHeads.map { open[$0]!.loss }, headsMissing: missing, fields: fields))
    }

    private func push(_ p: PushMessage, frameBytes: Int) -> WireMessage {
        let parsed: [MessageValidation.Head]
        do throws(MessageValidation.Refusal) { parsed = try validation.checkPush(p) } catch { return refuse(error.code, error.message) }
        // The replay guard admits a push only once it is known to be for a round this server can place,
        // from the right base, with heads it may send: one that fails those checks must not move the
        // worker's replay window (a push for round 2^62 would lock that worker out for good).
        let what = "push from \(p.workerId) for round \(p.round)"

        lock.lock(); defer { lock.unlock() }
        if let failure { return refuse(.internalError, failure) }
        // --- open membership: only the heads bound to the sender ---
        sweepMembership()
        do throws(MessageValidation.Refusal) { try membership.admitPush(worker: p.workerId, heads: p.headIds) } catch { return refuse(error.code, error.message) }
        if p.round < openRound {
            // A resend of a push that was merged gets the same answer; a late one must resynchronise.
            // A push for round k was trained from the weights after merge k − 1: that is its base.
            if let o = outcomes[p.round], Set(p.headIds).isSubset(of: o.heads), p.baseCommit == commitOfRound[p.round - 1] {
                if let refused = admit(what, worker: p.workerId, round: p.round, nonce: p.nonce) { return refused }
                return answer(o.message, to: p)
            }
            return refuse(.staleRound, "push from \(p.workerId) for round \(p.round), which is merged; the server is at round \(main.round): resynchronise")
        }
        if finished { return refuse(.runFinished, "the run is finished (\(main.round) rounds)") }
        if p.round > openRound { return refuse(.staleRound, "push from \(p.workerId) for round \(p.round), but the open round is \(openRound)") }
        let r = p.round
        let base = commitOfRound[main.round] ?? ""
        guard p.baseCommit == base else {
            return refuse(.staleRound, "push from \(p.workerId) for round \(r) was trained from commit \(p.baseCommit.prefix(12).debugDescription), the round's base is \(base.prefix(12)): resynchronise")
        }
        if let taken = parsed.first(where: { open[$0.head].map { $0.worker != p.workerId } ?? false }) {
            return refuse(.unknownHead, "push from \(p.workerId) for round \(r): head \(taken.head) is already in from worker \(open[taken.head]!.worker)")
        }
        if let refused = admit(what, worker: p.workerId, round: p.round, nonce: p.nonce) { return refused }
        // A repeated (worker, head, round) is ignored: it waits for the round like the original but
        // adds no factors, tokens or bytes, so a resend can never be counted twice.
        let fresh = parsed.filter { open[$0.head] == nil }
        if openedAt == nil { openedAt = clock.now }
        // A push's replicated changes are against the weights of its base, the ones held now.
        let replicatedBase = fresh.isEmpty ? nil : main.packReplicated(main.model.params.pointer)
        for h in fresh {
            let replicated: FloatBuffer
            switch h.replicated {
            case .values(let v): replicated = v
            case .change(let c): replicated = withExtendedLifetime(replicatedBase!) { c.values(over: replicatedBase!.pointer) }
            }
            open[h.head] = Pending(worker: p.workerId, factors: h.factors, replicated: replicated, loss: h.loss,
                                   trainSeconds: Double(p.trainMicroseconds) / 1e6, waitSeconds: Double(p.previousWaitMicroseconds) / 1e6,
                                   replacedLatest: latestFactors[h.head])
            if let f = h.factors { latestFactors[h.head] = f.values }
        }
        if !fresh.isEmpty {
            bytesIn += frameBytes
            tokensIn += validation.tokensPerRound(heads: fresh.count)
        }
        openWaiters += 1
        while outcomes[r] == nil && !finished && failure == nil {
            if let refused = excludedAnswer(p, openExclusions) { openWaiters -= 1; return refused }
            if open.count == descriptor.totalHeads { close(); continue }
            // Open membership: every head some worker holds is in; heads nobody holds are not waited for.
            sweepMembership()
            if open.count >= options.quorum && awaitedHeadsJoined() && membership.everyBoundHead(isIn: Set(open.keys)) { close(); continue }
            let deadline = (openedAt ?? clock.now) + options.roundTimeout
            if clock.now >= deadline && open.count >= options.quorum { close(); continue }
            _ = lock.wait(until: Date(timeIntervalSinceNow: max(0.01, min(1, (deadline - clock.now).seconds))))
        }
        guard let o = outcomes[r] else { return refuse(.internalError, failure ?? "round \(r) did not close") }
        if Set(p.headIds).isDisjoint(with: o.heads), let refused = excludedAnswer(p, o.excluded) {
            // Not answered with the round's result: the round's answers no longer wait for this one.
            outcomes[r]?.waiters -= 1
            return refused
        }
        membership.answered(worker: p.workerId, tokens: validation.tokensPerRound(heads: p.headIds.count))
        return answer(o.message, to: p)
    }

    /// Merges the open round (lock held): the server's bits move only here.
    private func close() {
        let t0 = clock.now
        excludeOutliers()
        // Every head left out: nothing to merge; the round stays open for the heads still to come.
        guard !open.isEmpty else { lock.broadcast(); return }
        let heads = open.keys.sorted()
        let base = main.packReplicated(main.model.params.pointer)
        let mean = main.merge(heads.map { h in MainWeights.Push(head: h, factors: open[h]!.factors?.values, replicated: open[h]!.replicated) })
        // With a quantized push format the mean goes out as its change, and this server takes what the workers will.
        let meanChange = main.settleReplicatedMean(mean, base: base, format: descriptor.lte.pushFormat)
        let r = main.round
        let mergeSeconds = (clock.now - t0).seconds
        let hash = main.weightsHash
        totalTokens += tokensIn
        var workers: [String: [Int]] = [:]
        for h in heads { workers[open[h]!.worker, default: []].append(h) }
        let closed = ClosedRound(
            round: r, heads: heads, workers: workers, losses: open.mapValues(\.loss), tokens: totalTokens,
            // The rate of the round's last local step (steps count from 0).
            learningRate: descriptor.training.schedule.rate(at: r * descriptor.mergeEvery - 1),
            weightsHash: hash, mergeSeconds: mergeSeconds, roundSeconds: (lastClosedAt ?? started).map { (clock.now - $0).seconds } ?? 0,
            bytesIn: bytesIn, factors: open.compactMapValues { $0.factors?.values },
            excluded: openExclusions.keys.sorted().map { openExclusions[$0]! },
            workerTrainSeconds: open.values.map(\.trainSeconds).max() ?? 0, workerWaitSeconds: open.values.map(\.waitSeconds).max() ?? 0,
            notes: membership.takeNotes())
        let commit: String
        do { commit = try committer.commit(closed) } catch {
            // Nothing is answered for a round that is not durable. The weights in memory have moved
            // past the history, so this server stops; restarted, it resumes from the last durable round
            // and the workers resynchronise.
            failure = "could not record round \(r) in the history: \(error)"
            log("error: \(failure!)")
            finished = true
            lock.broadcast()
            return
        }
        commitOfRound[r] = commit
        for observer in observers { observer.roundClosed(closed, commit: commit) }
        let tensors = resultTensors(heads: heads, mean: mean, meanChange: meanChange)
        let message = RoundResultMessage(round: r, commitId: commit, weightsHash: hash, headsMerged: heads, tensors: tensors,
                                         frozenHash: main.frozenHash)
        outcomes[r] = Outcome(message: message, heads: Set(heads), excluded: openExclusions, waiters: openWaiters, closedAt: clock.now)
        outcomes[r - 8] = nil     // answers are kept for the last 8 rounds
        lastWorkerTimes = (closed.workerTrainSeconds, closed.workerWaitSeconds)
        open = [:]; openedAt = nil; openWaiters = 0; bytesIn = 0; tokensIn = 0; openExclusions = [:]
        lastClosedAt = clock.now
        if let rounds = descriptor.rounds, r >= rounds { finished = true; finishedAt = clock.now; finalHeads = Set(heads) }
        log(String(format: "round %d merged: heads %@ | loss %.4f | merge %.1f ms | %@", r, heads.map(String.init).joined(separator: ","),
                   closed.meanLoss, mergeSeconds * 1000, hash.short))
        lock.broadcast()
    }

    /// The request thread of round `r` has sent (or failed to send) its answer of `bytes` bytes.
    public func didAnswer(round r: Int, bytes: Int) {
        lock.lock(); defer { lock.unlock() }
        guard var o = outcomes[r] else { return }
        o.answered += 1
        o.bytesOut += bytes
        outcomes[r] = o
        if o.answered == o.waiters {
            // Measured once: every observer (rounds.jsonl, the metrics) reports the same sync time.
            let sync = (clock.now - o.closedAt).seconds
            for observer in observers { observer.roundAnswered(r, bytesOut: o.bytesOut, syncSeconds: sync) }
        }
        lock.broadcast()
    }

    /// Blocks until the run's last round is closed and answered (or `timeout` passes).
    public func waitUntilFinished(timeout: Duration? = nil) -> Bool {
        let end = timeout.map { clock.now + $0 }
        lock.lock(); defer { lock.unlock() }
        while true {
            if failure != nil { return true }
            if finished, let finishedAt {
                // A server restarted on a finished history has no outcome to answer.
                let answered = outcomes[main.round].map { $0.answered >= $0.waiters } ?? true
                if answered && (finalHeads.count == descriptor.totalHeads || clock.now - finishedAt >= (options.finalWait ?? options.roundTimeout)) { return true }
            }
            if let end, clock.now >= end { return false }
            _ = lock.wait(until: Date(timeIntervalSinceNow: 0.2))
        }
    }
}
