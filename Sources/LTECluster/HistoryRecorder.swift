import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// The server's link to its merge history (DESIGN.md §5): each round becomes the workers' push
/// commits and an octopus merge commit on `main`, written and synced before any worker is answered,
/// so a merge a worker has seen is never lost. A server started on an existing history resumes at
/// its head.
public final class HistoryRecorder {
    public let history: MergeHistory
    /// Rounds between snapshot commits that carry the full weights.
    public let snapshotEvery: Int
    private var lastCommit: String

    init(history: MergeHistory, snapshotEvery: Int, lastCommit: String) {
        self.history = history; self.snapshotEvery = snapshotEvery; self.lastCommit = lastCommit
    }

    /// Opens `RUN/history.git` and restores `main` and `core` from the head of `branch`, or creates
    /// the history from `main`'s initial weights. With `from`, first starts `branch` at that past
    /// round: a new line of training from there.
    public static func attach(run: URL, core: ServerCore, configJSON: Data, tokenizer: Data?, snapshotEvery: Int,
                              branch: String = "main", from: String? = nil, say: (String) -> Void) throws -> HistoryRecorder {
        let url = MergeHistory.location(inRun: run)
        let main = core.main, d = core.descriptor
        let recorder: HistoryRecorder
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
            for (h, b) in state.merged where d.lte.merge == .resetless { main.setLastMerged(head: h, from: b.pointer) }
            core.restore(round: state.head.round, commit: state.head.commit, latest: state.latest.mapValues(\.array), tokens: state.head.tokens)
            say("server: resumed \(url.path) (\(branch)) at round \(state.head.round) (\(state.head.commit.prefix(10)), weights \(state.head.weightsHash.prefix(12)))")
            recorder = HistoryRecorder(history: history, snapshotEvery: snapshotEvery, lastCommit: state.head.commit)
        } else {
            let weights = try TensorSlot.encode(TensorSlot.weights(main.model.layout), from: main.model.params.pointer)
            guard branch == "main" else { throw LTEError("--branch \(branch): there is no history in \(run.path) to branch from yet") }
            let history = try MergeHistory.create(at: url, config: configJSON, tokenizer: tokenizer, initialWeights: weights,
                                                  modelConfig: d.model, lora: main.lora, totalHeads: d.totalHeads)
            let root = try history.head().commit
            // Round 0's base is the root commit: pushes of the first round must name it.
            core.restore(round: 0, commit: root, latest: [:], tokens: 0)
            recorder = HistoryRecorder(history: history, snapshotEvery: snapshotEvery, lastCommit: root)
        }
        let previous = core.record
        core.record = { closed in
            _ = try previous(closed)
            return try recorder.record(closed, main: main)
        }
        return recorder
    }

    /// One round: a push commit per worker, then the merge commit; returns the merge commit's id.
    func record(_ c: ServerCore.ClosedRound, main: MainWeights) throws -> String {
        var pushes: [String] = []
        for (worker, heads) in c.workers.sorted(by: { $0.key < $1.key }) {
            var files: [Int: Data] = [:]
            if let layout = main.layout {
                for h in heads {
                    guard let f = c.factors[h] else { continue }
                    files[h] = try f.withUnsafeBufferPointer { try HeadFactors.encode($0.baseAddress!, layout: layout) }
                }
                pushes.append(try history.commitPush(worker: worker, round: c.round, baseCommit: lastCommit, heads: files))
            }
        }
        let metadata = RoundMetadata(losses: c.heads.map { .init(head: $0, loss: c.losses[$0]!) }, tokens: c.tokens,
                                     learningRate: c.learningRate, bytes: c.bytesIn,
                                     timing: .init(merge: c.mergeSeconds), headOrder: c.heads)
        let committed = try history.commitMerge(round: c.round, workerCommits: pushes, metadata: metadata,
                                                weights: main.model.params.pointer, snapshot: c.round % snapshotEvery == 0)
        guard committed.weightsHash == c.weightsHash else {
            throw LTEError("history recorded weights \(committed.weightsHash.prefix(12)) for round \(c.round), the server holds \(c.weightsHash.prefix(12))")
        }
        lastCommit = committed.commit
        return committed.commit
    }
}
