import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// The newest round on a line, without any weights.
public struct HistoryHead: Sendable, Equatable {
    public let branch: String
    public let round: Int
    public let commit: String
    public let weightsHash: WeightsDigest
    /// Cumulative tokens after the round.
    public let tokens: Int
    /// Heads that have been merged at least once on this line.
    public let mergedHeads: [Int]
}

/// A worker push, at the tip of its `workers/*` branch, trained from this line but not merged into
/// it yet (the server stopped between the push and the merge, or the push came late).
public struct PendingPush: Sendable, Equatable {
    public let worker: String
    public let commit: String
    public let round: Int
    public let heads: [Int]
}

/// Everything a parameter server restarted on an existing history needs to carry on at its head.
public final class ResumeState {
    public let head: HistoryHead
    /// The main weights after `head.round`, replayed and checked against the recorded hash.
    public let weights: FloatBuffer
    /// Each head's factors at its last merge on this line: the factors of Vᵢ under the reset-less
    /// rule. (Under reset-B, Vᵢ is 0 and these are only what was last merged.)
    public let merged: [Int: FloatBuffer]
    /// Each head's newest factors: its pending push if it has one, else what it was last merged
    /// with (with B zeroed under reset-B, as the head itself zeroes it after a merge).
    public let latest: [Int: FloatBuffer]
    public let pending: [PendingPush]
    /// `lte.outer nesterov`: the outer optimizer's velocity m after `head.round`, laid out like the
    /// weights, replayed and checked against the recorded hash; nil under the plain merge.
    public let velocity: FloatBuffer?

    init(head: HistoryHead, weights: FloatBuffer, merged: [Int: FloatBuffer], latest: [Int: FloatBuffer], pending: [PendingPush],
         velocity: FloatBuffer?) {
        self.head = head; self.weights = weights; self.merged = merged; self.latest = latest; self.pending = pending
        self.velocity = velocity
    }

    /// The round the server opens next.
    public var nextRound: Int { head.round + 1 }
}

extension MergeHistory {
    /// The newest round on this line.
    public func head() throws -> HistoryHead {
        let (commit, record) = try resolveRound(try tip().hex)
        let heads = try repository.files(inTree: commit.tree).keys.compactMap(Paths.headID).sorted()
        return HistoryHead(branch: branch, round: record.round, commit: commit.id.hex, weightsHash: record.weightsSHA256,
                           tokens: record.tokens, mergedHeads: heads)
    }

    /// The state to resume this line at its head: weights by replay, every head's merged and newest
    /// factors, and the pushes trained from this line that it has not merged yet.
    public func resume() throws -> ResumeState {
        let head = try self.head()
        let weights = FloatBuffer(count: parameterLayout.count)
        let velocity = try replayState(to: head.commit, into: weights).velocity
        let tipID = try tip()
        let tree = try repository.readCommit(tipID).tree
        var merged: [Int: FloatBuffer] = [:]
        var latest: [Int: FloatBuffer] = [:]
        if let layout = loraLayout {
            for (path, blob) in try repository.files(inTree: tree) {
                guard let h = Paths.headID(path) else { continue }
                let source = "history \(url.path): round \(head.round) \(path)"
                merged[h] = try HeadFactors.decode(try repository.readBlob(blob), layout: layout, source: source)
                let newest = try HeadFactors.decode(try repository.readBlob(blob), layout: layout, source: source)
                if manifest.lora?.merge == .resetB {
                    for s in layout.sites { (newest.pointer + s.b).update(repeating: 0, count: s.outFeatures * layout.rank) }
                }
                latest[h] = newest
            }
        }
        var pending: [PendingPush] = []
        for (name, id) in try repository.references(matching: "refs/heads/workers/*") {
            guard id != tipID, try !repository.isDescendant(tipID, of: id) else { continue }   // merged already
            let commit = try repository.readCommit(id)
            guard let push = try pushRecord(commit) else {
                throw LTEError("history \(url.path): \(name) (\(id.short)) is not a worker push")
            }
            // Only pushes trained from this line count: on a branch started from an old round, the
            // workers' later pushes to other lines are not this line's business.
            guard let base = GitOID(hex: push.base), try base == tipID || repository.isDescendant(tipID, of: base) else { continue }
            pending.append(PendingPush(worker: push.worker, commit: id.hex, round: push.round, heads: push.heads))
            if let layout = loraLayout {
                for h in push.heads {
                    guard let blob = try repository.blobID(at: Paths.head(h), inTree: commit.tree) else { continue }
                    latest[h] = try HeadFactors.decode(try repository.readBlob(blob), layout: layout,
                                                       source: "history \(url.path): push \(id.short) heads/\(h).safetensors")
                }
            }
        }
        return ResumeState(head: head, weights: weights, merged: merged, latest: latest, pending: pending, velocity: velocity)
    }
}
