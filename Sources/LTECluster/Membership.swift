import Foundation
import LTENet
import LTETraining

/// Who holds which head, for a run whose workers come and go (open membership). `ServerCore` asks
/// it, under its lock, whenever a worker says hello, pushes or leaves; it never touches weights.
///
/// - A hello binds heads to the worker's name (its identity, when the run has keys): the heads it
///   names, or with `--heads auto` up to K free ones, lowest ids first. A head bound to another live
///   worker is refused, and so is a hello naming other heads than its name already holds (a second
///   process with the same name).
/// - A push must be for heads bound to its sender. With identities that is strict; without them a
///   push for a free head is still taken (runs that push without a hello keep working).
/// - A clean leave deposits each head's whole training state; the next worker given the head gets
///   it and continues bit for bit.
/// - A worker not heard from for `leaseTimeout` (and not waiting on a round) has vanished, and a
///   revoked identity is gone: their heads become free, handed on with the factors of their last
///   merge and fresh optimizer moments.
/// Each of these events becomes a note in the next round's `round.json` (`takeNotes`).
final class Membership {
    /// A clean leave's state, waiting for the head's next worker.
    struct Deposit {
        let state: HeadTrainingState
        let from: String
        let round: Int
    }

    /// What the server knows of one worker, for `lte status` and the lease.
    struct WorkerRecord {
        var heads: [Int]
        var lastSeen: ContinuousClock.Instant
        var answeredAt: ContinuousClock.Instant?
        var pushedAt: ContinuousClock.Instant?
        var tokensPerSecond: Double?
        var waitSeconds: Double?
    }

    /// How a head given out by `assign` starts on its new worker.
    enum Start: Equatable {
        /// As its worker (the same one, or a new one without history) would have it anyway.
        case asBefore
        /// With the state its previous worker handed over.
        case handedOver
        /// With the factors of its last merge and fresh optimizer moments (its worker vanished or was revoked).
        case lastMerge
    }

    let totalHeads: Int
    let leaseTimeout: Duration
    let identities: (any IdentityVerifier)?
    private let clock = ContinuousClock()
    private(set) var owner: [Int: String] = [:]
    private(set) var workers: [String: WorkerRecord] = [:]
    private(set) var deposits: [Int: Deposit] = [:]
    /// Heads whose worker vanished: their next worker starts them from their last merge.
    private(set) var orphaned: [Int: String] = [:]
    private var notes: [String: String] = [:]

    init(totalHeads: Int, leaseTimeout: Duration, identities: (any IdentityVerifier)?) {
        self.totalHeads = totalHeads; self.leaseTimeout = leaseTimeout; self.identities = identities
    }

    var freeHeads: [Int] { (0..<totalHeads).filter { owner[$0] == nil } }

    /// How many heads some worker holds.
    var heldCount: Int { owner.count }

    /// Whether every head bound by a hello is in `heads` (the round can close without waiting for
    /// heads nobody holds); false while no head is bound.
    func everyBoundHead(isIn heads: Set<Int>) -> Bool { !owner.isEmpty && owner.keys.allSatisfy(heads.contains) }

    // MARK: - Requests

    /// Binds heads to `worker` for its hello: `asked`, or with none asked up to `maxHeads` free ones.
    /// Returns each head with how it starts.
    func assign(worker: String, asked: [Int], maxHeads: Int) throws(MessageValidation.Refusal) -> [(head: Int, start: Start, deposit: Deposit?)] {
        let heads: [Int]
        if asked.isEmpty {
            let mine = owner.filter { $0.value == worker }.keys.sorted()
            let free = freeHeads.prefix(max(0, maxHeads - mine.count))
            heads = (mine + free).sorted()
            guard !heads.isEmpty else {
                throw .init(code: .noFreeHead, message: "hello from \(worker): every one of the run's \(totalHeads) heads is held by a worker; try again when one leaves")
            }
        } else {
            // One name, one process: a second process started with the same --id and other heads
            // would otherwise be merged into this worker's identity. (A restarted worker asks for
            // the heads it held; its heads are free again once its lease runs out.)
            let mine = owner.filter { $0.value == worker }.keys.sorted()
            if !mine.isEmpty, Set(asked) != Set(mine) {
                throw .init(code: .unauthorized, message: "hello from \(worker): worker \(worker) already holds heads \(mine) and this hello asks for \(asked.sorted()) — another process with the same --id? Give each worker its own --id (a worker that stopped is freed after --lease-timeout)")
            }
            if let taken = asked.first(where: { owner[$0].map { $0 != worker } ?? false }) {
                throw .init(code: .unknownHead, message: "hello from \(worker): head \(taken) is held by worker \(owner[taken]!) (ask for free heads with --heads auto)")
            }
            heads = asked
        }
        var out: [(Int, Start, Deposit?)] = []
        for h in heads {
            if owner[h] == worker { out.append((h, .asBefore, nil)); continue }
            owner[h] = worker
            if let d = deposits.removeValue(forKey: h) {
                out.append((h, .handedOver, d))
                notes["membership.head.\(h)"] = "taken by \(worker) with the state \(d.from) handed over at round \(d.round)"
            } else if orphaned[h] == worker {
                // Its own head back (its lease ran out, or it restarted): it keeps what it has.
                orphaned[h] = nil
                out.append((h, .asBefore, nil))
            } else if let gone = orphaned.removeValue(forKey: h) {
                out.append((h, .lastMerge, nil))
                notes["membership.head.\(h)"] = "taken by \(worker) from \(gone) (\(gone) vanished or was revoked): last-merge factors, fresh optimizer moments"
            } else {
                out.append((h, .asBefore, nil))
            }
        }
        var record = workers[worker] ?? WorkerRecord(heads: [], lastSeen: clock.now)
        record.heads = owner.filter { $0.value == worker }.keys.sorted()
        record.lastSeen = clock.now
        workers[worker] = record
        return out
    }

    /// Checks that `worker` may push for `heads` (binding free ones when the run has no identities).
    func admitPush(worker: String, heads: [Int]) throws(MessageValidation.Refusal) {
        for h in heads {
            if let o = owner[h], o != worker {
                // The code a claim of a head already in from another worker has always had.
                throw .init(code: .unknownHead, message: "push from \(worker): head \(h) is bound to worker \(o)")
            }
            if owner[h] == nil {
                if orphaned[h] == worker {
                    // Its lease ran out while it trained: it says hello again and, if the head is still free, keeps it.
                    throw .init(code: .staleRound, message: "push from \(worker): its lease ran out and head \(h) was freed: say hello again")
                }
                if identities != nil || deposits[h] != nil || orphaned[h] != nil {
                    throw .init(code: .unauthorized, message: "push from \(worker): head \(h) is not bound to it (say hello for it first)")
                }
            }
        }
        let now = clock.now
        var record = workers[worker] ?? WorkerRecord(heads: heads, lastSeen: now)
        record.lastSeen = now
        record.pushedAt = now
        workers[worker] = record
    }

    /// A push from `worker` was answered; `tokens` is what its heads saw in the round.
    func answered(worker: String, tokens: Int) {
        guard var r = workers[worker] else { return }
        let now = clock.now
        if let pushedAt = r.pushedAt {
            r.waitSeconds = (now - pushedAt).seconds
            // Training time: from its previous answer to this push.
            if let answeredAt = r.answeredAt, pushedAt > answeredAt { r.tokensPerSecond = Double(tokens) / (pushedAt - answeredAt).seconds }
        }
        r.answeredAt = now
        r.lastSeen = now
        workers[worker] = r
    }

    /// A clean leave: the heads' states are kept for their next worker, the heads are free.
    func leave(worker: String, states: [Int: HeadTrainingState], round: Int) throws(MessageValidation.Refusal) {
        if let h = states.keys.sorted().first(where: { owner[$0] != worker }) {
            throw .init(code: .unauthorized, message: "leave from \(worker): head \(h) is not bound to it\(owner[h].map { " but to \($0)" } ?? "")")
        }
        for (h, s) in states {
            owner[h] = nil
            deposits[h] = Deposit(state: s, from: worker, round: round)
            notes["membership.head.\(h)"] = "handed over by \(worker) at round \(round) (clean leave: factors and optimizer moments kept)"
        }
        // Heads it held but did not hand over (none, from an honest worker) are orphaned.
        for (h, o) in owner where o == worker { owner[h] = nil; orphaned[h] = worker }
        workers[worker] = nil
    }

    /// Frees the heads of workers whose lease ran out (unless `waiting` says they wait on a round)
    /// or whose identity was revoked; returns the heads freed.
    func expire(waiting: (String) -> Bool) -> [Int] {
        let now = clock.now
        var freed: [Int] = []
        for (name, r) in workers {
            let revoked: Bool = if let identities, case .revoked = identities.status(of: name) { true } else { false }
            guard revoked || (now - r.lastSeen > leaseTimeout && !waiting(name)) else { continue }
            let why = revoked ? "identity revoked" : String(format: "not heard from for %.0f s", (now - r.lastSeen).seconds)
            for (h, o) in owner where o == name {
                owner[h] = nil
                orphaned[h] = name
                freed.append(h)
                notes["membership.head.\(h)"] = "freed: worker \(name) \(why); handed on with last-merge factors and fresh optimizer moments"
            }
            workers[name] = nil
        }
        return freed.sorted()
    }

    /// The membership events since the last round, for its `round.json`.
    func takeNotes() -> [String: String] { defer { notes = [:] }; return notes }

    /// `lte status`'s view: one field per worker and the free heads.
    func statusFields() -> [String: String] {
        let now = clock.now
        var fields: [String: String] = ["workers": String(workers.count),
                                        "free_heads": freeHeads.map(String.init).joined(separator: ",")]
        for (name, r) in workers {
            var parts = ["heads=\(r.heads.map(String.init).joined(separator: ","))", String(format: "last_seen_s=%.1f", (now - r.lastSeen).seconds)]
            if let t = r.tokensPerSecond { parts.append(String(format: "tokens_per_s=%.0f", t)) }
            if let w = r.waitSeconds { parts.append(String(format: "wait_s=%.2f", w)) }
            fields["worker.\(name)"] = parts.joined(separator: " ")
        }
        for h in freeHeads {
            if let d = deposits[h] { fields["free.\(h)"] = "handed over by \(d.from) at round \(d.round) (state kept)" }
            else if let gone = orphaned[h] { fields["free.\(h)"] = "from \(gone), vanished or revoked (last-merge factors, fresh moments)" }
        }
        return fields
    }
}
