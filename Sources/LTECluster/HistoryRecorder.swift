import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// The server's link to its merge history (DESIGN.md §5), and the `RoundCommitter` a server is
/// built with: each round becomes the workers' push commits and an octopus merge commit on `main`,
/// written and synced before any worker is answered, so a merge a worker has seen is never lost. A
/// server started on an existing history resumes at its head.
public final class HistoryRecorder: RoundCommitter {
    public let history: MergeHistory
    /// Rounds between snapshot commits that carry the full weights.
    public let snapshotEvery: Int
    public private(set) var committedHead: CommittedHead
    private let main: MainWeights

    init(history: MergeHistory, snapshotEvery: Int, main: MainWeights, head: CommittedHead) {
        self.history = history; self.snapshotEvery = snapshotEvery; self.main = main; committedHead = head
    }

    /// Opens `RUN/history.git` and restores `main`'s weights (and each head's last merged factors)
    /// from the head of `branch`, or creates the history from `main`'s initial weights. With `from`,
    /// first starts `branch` at that past round: a new line of training from there. The server made
    /// with this recorder resumes at `committedHead`.
    public static func open(run: URL, main: MainWeights, descriptor d: RunConfig, configJSON: Data, tokenizer: Data?, snapshotEvery: Int,
                            branch: String = "main", from: String? = nil, say: (String) -> Void) throws -> HistoryRecorder {
        let url = MergeHistory.location(inRun: run)
        if let from {
            guard FileManager.default.fileExists(atPath: url.path) else { throw LTEError("--from \(from): \(url.path) does not exist yet") }
            guard branch != "main" else { throw LTEError("--from needs --branch NAME for the new line (main already has its own)") }
            let trunk = try MergeHistory.open(at: url, modelConfig: d.model)
            let commit = try trunk.branch(from: from, name: branch)
            say("server: new line \(branch) from \(from) (\(commit.prefix(10)))")
        }
        if FileManager.default.fileExists(atPath: url.path) {
            let history = try MergeHistory.open(at: url, modelConfig: d.model, branch: branch)
            guard history.manifest.totalHeads == d.totalHeads, history.manifest.lora == (main.lora.map { _ in d.lte }) else {
                throw LTEError("history \(url.path) was made with other LTE settings (heads \(history.manifest.totalHeads), \(history.manifest.lora.map { "rank \($0.rank), alpha \($0.alpha)" } ?? "no adapters")) than this server's")
            }
            let state = try history.resume()
            main.model.params.copy(from: state.weights)
            main.weightsWritten()
            for (h, b) in state.merged where d.lte.merge == .resetless { main.setLastMerged(head: h, from: b.pointer) }
            // The outer optimizer resumes with the velocity replay rebuilt, so round k + 1 steps as it would have.
            if let outer = main.outer, let v = state.velocity { outer.setVelocity(from: v.pointer) }
            say("server: resumed \(url.path) (\(branch)) at round \(state.head.round) (\(state.head.commit.prefix(10)), weights \(state.head.weightsHash.short))")
            return HistoryRecorder(history: history, snapshotEvery: snapshotEvery, main: main, head: CommittedHead(
                round: state.head.round, commit: state.head.commit, latestFactors: state.latest, tokens: state.head.tokens))
        }
        let weights = try TensorSlot.encode(TensorSlot.weights(main.model.layout), from: main.model.params.pointer)
        guard branch == "main" else { throw LTEError("--branch \(branch): there is no history in \(run.path) to branch from yet") }
        let history = try MergeHistory.create(at: url, config: configJSON, tokenizer: tokenizer, initialWeights: weights,
                                              modelConfig: d.model, lora: main.lora, totalHeads: d.totalHeads)
        // Round 0 is the root commit: pushes for round 1 name it as their base.
        return HistoryRecorder(history: history, snapshotEvery: snapshotEvery, main: main,
                               head: CommittedHead(round: 0, commit: try history.head().commit, latestFactors: [:], tokens: 0))
    }

    /// One round: a push commit per worker, then the merge commit; returns the merge commit's id.
    public func commit(_ c: ClosedRound) throws -> String {
        var pushes: [String] = []
        if let layout = main.layout {
            for (worker, heads) in c.workers.sorted(by: { $0.key < $1.key }) {
                var files: [Int: Data] = [:]
                for h in heads {
                    guard let f = c.factors[h] else { continue }
                    files[h] = try HeadFactors.encode(f.pointer, layout: layout)
                }
                pushes.append(try history.commitPush(worker: worker, round: c.round, baseCommit: committedHead.commit, heads: files))
            }
        }
        let metadata = RoundMetadata(losses: c.heads.map { .init(head: $0, loss: c.losses[$0]!) }, tokens: c.tokens,
                                     learningRate: c.learningRate, bytes: c.bytesIn,
                                     timing: .init(merge: c.mergeSeconds), headOrder: c.heads, notes: c.notes, excluded: c.excluded)
        let committed = try history.commitMerge(round: c.round, workerCommits: pushes, metadata: metadata,
                                                weights: main.model.params.pointer, velocity: main.outer.map { UnsafePointer($0.velocity.pointer) },
                                                snapshot: c.round % snapshotEvery == 0)
        guard committed.weightsHash == c.weightsHash else {
            throw LTEError("history recorded weights \(committed.weightsHash.short) for round \(c.round), the server holds \(c.weightsHash.short)")
        }
        // The second hash: the history quantized the weights it recorded on its own; the workers get the server's.
        let served = main.frozenHash
        guard committed.frozenHash == served else {
            throw LTEError("history recorded frozen weights \(committed.frozenHash?.short ?? "none") for round \(c.round), the server holds \(served?.short ?? "none")")
        }
        var latest = committedHead.latestFactors
        for (h, f) in c.factors { latest[h] = f }
        committedHead = CommittedHead(round: c.round, commit: committed.commit, latestFactors: latest, tokens: c.tokens)
        return committed.commit
    }
}
