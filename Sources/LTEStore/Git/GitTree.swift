import CGit2
import Foundation
import LTEBase

/// Trees as flat maps from a slash-separated path ("weights/model.safetensors") to a blob id: the
/// history only ever stores files, and a flat map is what code wants to read and edit.
extension GitRepository {
    /// Writes the tree (and its subtrees) holding exactly these files, mode 100644. Git sorts the
    /// entries, so the same files always give the same tree id.
    public func writeTree(_ files: [String: GitOID]) throws -> GitOID {
        var blobs: [String: GitOID] = [:]
        var directories: [String: [String: GitOID]] = [:]
        for (path, id) in files {
            let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard !parts[0].isEmpty, parts[0] != ".", parts[0] != "..", parts.count == 1 || !parts[1].isEmpty else {
                throw LTEError("git repository \(self.path): invalid tree path \(path.debugDescription)")
            }
            if parts.count == 1 { blobs[parts[0]] = id } else { directories[parts[0], default: [:]][parts[1]] = id }
        }
        if let clash = blobs.keys.first(where: { directories[$0] != nil }) {
            throw LTEError("git repository \(self.path): \(clash) is both a file and a directory in one tree")
        }
        var builder: OpaquePointer?
        try check(git_treebuilder_new(&builder, handle, nil), "cannot start a tree")
        defer { git_treebuilder_free(builder) }
        func insert(_ name: String, _ id: GitOID, _ mode: git_filemode_t) throws {
            var raw = id.raw
            try check(git_treebuilder_insert(nil, builder, name, &raw, mode), "cannot add \(name) to a tree")
        }
        for (name, id) in blobs { try insert(name, id, GIT_FILEMODE_BLOB) }
        for (name, sub) in directories { try insert(name, try writeTree(sub), GIT_FILEMODE_TREE) }
        var oid = git_oid()
        try check(GitLibrary.writing { git_treebuilder_write(&oid, builder) }, "cannot write a tree")
        return GitOID(oid)
    }

    /// Every file in the tree `id`, recursively, by path.
    public func files(inTree id: GitOID) throws -> [String: GitOID] {
        var out: [String: GitOID] = [:]
        try collect(tree: id, prefix: "", into: &out)
        return out
    }

    private func collect(tree id: GitOID, prefix: String, into out: inout [String: GitOID]) throws {
        try checkLooseObject(id)
        var raw = id.raw
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, handle, &raw), "cannot read tree \(id.short)")
        defer { git_tree_free(tree) }
        for i in 0..<git_tree_entrycount(tree) {
            let entry = git_tree_entry_byindex(tree, i)
            let name = prefix + String(cString: git_tree_entry_name(entry))
            let entryID = GitOID(git_tree_entry_id(entry).pointee)
            switch git_tree_entry_type(entry) {
            case GIT_OBJECT_TREE: try collect(tree: entryID, prefix: name + "/", into: &out)
            case GIT_OBJECT_BLOB: out[name] = entryID
            default: continue   // submodules: never written by the history
            }
        }
    }

    /// The blob id at `path` in tree `id`, or nil if the tree has no such file.
    public func blobID(at path: String, inTree id: GitOID) throws -> GitOID? {
        try checkLooseObject(id)
        var raw = id.raw
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, handle, &raw), "cannot read tree \(id.short)")
        defer { git_tree_free(tree) }
        var entry: OpaquePointer?
        let code = git_tree_entry_bypath(&entry, tree, path)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "cannot look up \(path) in tree \(id.short)")
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return nil }
        return GitOID(git_tree_entry_id(entry).pointee)
    }

    /// The bytes of the file at `path` in commit `commit`'s tree, or nil if it has no such file.
    public func readFile(_ path: String, inCommit commit: GitOID) throws -> Data? {
        guard let blob = try blobID(at: path, inTree: try readCommit(commit).tree) else { return nil }
        return try readBlob(blob)
    }
}
