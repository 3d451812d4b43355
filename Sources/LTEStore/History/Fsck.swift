import Foundation
import LTEBase
import LTENumerics

/// What `fsck()` checked.
public struct FsckReport: Sendable, Equatable {
    /// Objects read back (each inflated and re-hashed by libgit2) and their total size.
    public let objects: Int
    public let bytes: Int
    /// Distinct rounds whose weights were rebuilt and matched their recorded hash.
    public let rounds: Int
    /// Of those, rounds whose frozen-weights hash (`lte.frozen_weights` int8 or nf4) was also matched.
    public let frozenRounds: Int
    /// Snapshot commits whose stored weights matched the replayed ones.
    public let snapshots: Int
    /// Lines (branches other than `workers/*`) replayed from their root.
    public let lines: [String]
}

extension MergeHistory {
    /// Checks the whole history: every object reads back and hashes to its id; everything any ref
    /// reaches is present; every round of every line, replayed from the root, gives its recorded
    /// weights hash (and, with quantized frozen weights, its frozen-weights hash), and every
    /// snapshot's stored weights match. Slow by design (a full replay).
    /// The first problem throws one line naming the object or round.
    public func fsck() throws -> FsckReport {
        do {
            // A fresh handle, so nothing libgit2 cached before a file was damaged hides the damage.
            let repo = try GitRepository.open(at: url)
            let count = try repo.verifyAllObjects()
            try checkConnectivity(repo)
            var rounds = Set<GitOID>()
            var frozenRounds = Set<GitOID>()
            var snapshots = Set<GitOID>()
            var lines: [String] = []
            for (name, tip) in try repo.references(matching: "refs/heads/*") {
                let line = String(name.dropFirst("refs/heads/".count))
                guard !line.hasPrefix("workers/") else { continue }
                let history = MergeHistory(repository: repo, url: url, branch: line, manifest: manifest)
                let chain = try repo.firstParentHistory(from: tip)
                let weights = FloatBuffer(count: parameterLayout.count)
                var replayer = Replayer(history: history, weights: weights)
                _ = try replayer.run(chain.reversed(), checkEveryRound: true, checkSnapshots: true)
                for c in chain {
                    rounds.insert(c.id)
                    if try history.roundRecord(c)?.frozenWeights != nil { frozenRounds.insert(c.id) }
                    if try repo.blobID(at: Paths.weights, inTree: c.tree) != nil { snapshots.insert(c.id) }
                }
                lines.append(line)
            }
            return FsckReport(objects: count.objects, bytes: count.bytes, rounds: rounds.count, frozenRounds: frozenRounds.count, snapshots: snapshots.count, lines: lines)
        } catch let e as LTEError {
            throw LTEError("fsck: \(e.message)")
        }
    }

    /// Every commit, tree and blob reachable from any ref (tags peeled) is in the object database.
    private func checkConnectivity(_ repo: GitRepository) throws {
        var pending: [GitOID] = []
        for (name, _) in try repo.references(matching: "refs/*") {
            guard let id = try repo.resolveCommit(name) else {
                throw LTEError("history \(url.path): reference \(name) does not lead to a commit")
            }
            pending.append(id)
        }
        var seen = Set<GitOID>()
        var blobs = Set<GitOID>()
        while let id = pending.popLast() {
            guard seen.insert(id).inserted else { continue }
            guard try repo.contains(id) else { throw LTEError("history \(url.path): commit \(id.hex) is missing") }
            let commit = try repo.readCommit(id)
            guard try repo.contains(commit.tree) else {
                throw LTEError("history \(url.path): tree \(commit.tree.hex) of commit \(id.short) is missing")
            }
            for (path, blob) in try repo.files(inTree: commit.tree) where blobs.insert(blob).inserted {
                guard try repo.contains(blob) else {
                    throw LTEError("history \(url.path): object \(blob.hex) (\(path) in commit \(id.short)) is missing")
                }
            }
            pending.append(contentsOf: commit.parents)
        }
    }
}
