import CGit2
import Foundation

/// What the history reads back from a commit.
public struct GitCommitInfo: Sendable, Equatable {
    public let id: GitOID
    public let parents: [GitOID]
    public let tree: GitOID
    public let message: String
    /// Committer time.
    public let time: Date
}

extension GitRepository {
    /// Writes a commit of `tree` with `parents` (first parent first; any number, so octopus merges
    /// work) and moves `reference` to it only if the reference still points at `expected` (nil: must
    /// not exist yet). With libgit2's fsync option on (see `GitLibrary`), the objects and the
    /// reference are on disk when this returns.
    public func commit(tree: GitOID, parents: [GitOID], message: String,
                       updating reference: String, expected: GitOID?) throws -> GitOID {
        var treeRaw = tree.raw
        var treeObject: OpaquePointer?
        try check(git_tree_lookup(&treeObject, handle, &treeRaw), "cannot find tree \(tree.short) to commit")
        defer { git_tree_free(treeObject) }
        var parentObjects: [OpaquePointer?] = []
        defer { parentObjects.forEach { git_commit_free($0) } }
        for p in parents {
            var raw = p.raw
            var c: OpaquePointer?
            try check(git_commit_lookup(&c, handle, &raw), "cannot find parent commit \(p.short)")
            parentObjects.append(c)
        }
        let signature = try Signature()
        var oid = git_oid()
        let code = GitLibrary.writing { parentObjects.withUnsafeMutableBufferPointer { buffer in
            git_commit_create(&oid, handle, nil, signature.pointer, signature.pointer, "UTF-8", message, treeObject,
                              parents.count, buffer.baseAddress)
        } }
        try check(code, "cannot write a commit")
        let id = GitOID(oid)
        let summary = message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
        try updateReference(reference, to: id, expected: expected, message: "commit: \(summary)")
        return id
    }

    public func readCommit(_ id: GitOID) throws -> GitCommitInfo {
        try checkLooseObject(id)
        var raw = id.raw
        var c: OpaquePointer?
        try check(git_commit_lookup(&c, handle, &raw), "cannot read commit \(id.short)")
        defer { git_commit_free(c) }
        let parents = (0..<git_commit_parentcount(c)).map { GitOID(git_commit_parent_id(c, $0).pointee) }
        return GitCommitInfo(id: id, parents: parents, tree: GitOID(git_commit_tree_id(c).pointee),
                             message: String(cString: git_commit_message(c)),
                             time: Date(timeIntervalSince1970: TimeInterval(git_commit_time(c))))
    }

    /// `from` and its first parents back to the root, newest first (`git log --first-parent`),
    /// stopping early after the first commit for which `stop` is true (that commit included).
    public func firstParentHistory(from: GitOID, stop: (GitCommitInfo) throws -> Bool = { _ in false }) throws -> [GitCommitInfo] {
        var out: [GitCommitInfo] = []
        var next: GitOID? = from
        while let id = next {
            let c = try readCommit(id)
            out.append(c)
            if try stop(c) { break }
            next = c.parents.first
        }
        return out
    }
}
