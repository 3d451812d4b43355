import Foundation
import LTEBase

/// One round in `log()`.
public struct RoundSummary: Sendable, Equatable {
    public let round: Int
    public let commit: String
    public let time: Date
    /// Heads merged, in summation order (empty for round 0).
    public let heads: [Int]
    public let meanLoss: Float?
    public let tokens: Int
    public let weightsHash: WeightsDigest
    public let snapshot: Bool
}

/// One commit in `show(_:)`: a round (with `round`) or a worker push (with `push`).
public struct HistoryCommit: Sendable, Equatable {
    public let commit: String
    public let parents: [String]
    public let time: Date
    public let message: String
    public let round: RoundRecord?
    public let push: PushRecord?
    /// Every file in the commit's tree: path → blob id.
    public let files: [String: String]
}

extension MergeHistory {
    /// The commit `revision` names, as a full id. A revision is, in this order: a round number on
    /// this line ("3"); anything `git rev-parse` takes — a full or short commit id, a tag
    /// ("snapshot/round-4"), a branch ("main", "workers/w0"), "main~2".
    public func resolve(_ revision: String) throws -> String {
        try resolveCommit(revision).hex
    }

    /// The rounds on this line, newest first (at most `limit`).
    public func log(limit: Int? = nil) throws -> [RoundSummary] {
        var out: [RoundSummary] = []
        var walked = 0
        for commit in try repository.firstParentHistory(from: try tip(), stop: { _ in walked += 1; return limit.map { walked >= $0 } ?? false }) {
            guard let r = try roundRecord(commit) else {
                throw LTEError("history \(url.path): commit \(commit.id.short) on \(branch) is not a round")
            }
            out.append(RoundSummary(round: r.round, commit: commit.id.hex, time: commit.time, heads: r.heads, meanLoss: r.meanLoss,
                                    tokens: r.tokens, weightsHash: r.weightsSHA256, snapshot: r.snapshot))
        }
        return out
    }

    /// The commit `revision` names, with its round or push record and its files.
    public func show(_ revision: String) throws -> HistoryCommit {
        let commit = try repository.readCommit(try resolveCommit(revision))
        return HistoryCommit(commit: commit.id.hex, parents: commit.parents.map(\.hex), time: commit.time, message: commit.message,
                             round: try roundRecord(commit), push: try pushRecord(commit),
                             files: try repository.files(inTree: commit.tree).mapValues(\.hex))
    }

    func resolveCommit(_ revision: String) throws -> GitOID {
        let trimmed = revision.trimmingCharacters(in: .whitespaces)
        if !trimmed.isEmpty, trimmed.allSatisfy(\.isASCII), let round = Int(trimmed), round >= 0 {
            if let commit = try commit(ofRound: round) { return commit.id }
        }
        if !trimmed.isEmpty, !trimmed.hasPrefix("-"), let id = try repository.resolveCommit(trimmed) { return id }
        throw LTEError("history \(url.path): unknown revision \(revision.debugDescription) "
                       + "(expected a round number on \(branch), a tag such as snapshot/round-0, a branch such as main, or a commit id)")
    }

    /// The commit and record of the round `revision` names; a worker push is an error.
    func resolveRound(_ revision: String) throws -> (commit: GitCommitInfo, record: RoundRecord) {
        let commit = try repository.readCommit(try resolveCommit(revision))
        guard let record = try roundRecord(commit) else {
            throw LTEError("history \(url.path): \(revision.debugDescription) (\(commit.id.short)) is a worker push, not a round")
        }
        return (commit, record)
    }

    /// The commit of round `round` on this line, or nil if the line has no such round.
    func commit(ofRound round: Int) throws -> GitCommitInfo? {
        var found: GitCommitInfo?
        _ = try repository.firstParentHistory(from: try tip()) { commit in
            guard let r = try roundRecord(commit) else { return true }
            if r.round == round { found = commit }
            return r.round <= round
        }
        return found
    }
}
