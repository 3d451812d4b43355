import CGit2
import Foundation
import LTEBase

/// A bare git repository opened through libgit2: the few operations the merge history needs, each
/// turning libgit2's error codes into one-line `LTEError`s that name the repository.
///
/// Not thread-safe (libgit2 handles are not): use one instance from one task at a time.
public final class GitRepository {
    let handle: OpaquePointer
    public let path: String
    /// The object directory, "…/objects/" (see `checkLooseObject`).
    let objectsPath: String

    private init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
        objectsPath = String(cString: git_repository_path(handle)) + "objects/"
    }

    deinit { git_repository_free(handle) }

    /// Creates a bare repository whose HEAD names `refs/heads/<initialBranch>`; fails if one exists.
    public static func createBare(at url: URL, initialBranch: String = "main") throws -> GitRepository {
        GitLibrary.ensureInitialized()
        var options = git_repository_init_options()
        try GitLibrary.check(git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)),
                             "cannot initialise repository options")
        options.flags = GIT_REPOSITORY_INIT_BARE.rawValue | GIT_REPOSITORY_INIT_NO_REINIT.rawValue | GIT_REPOSITORY_INIT_MKPATH.rawValue
        var handle: OpaquePointer?
        let code = initialBranch.withCString { head -> Int32 in
            options.initial_head = head
            return GitLibrary.writing { git_repository_init_ext(&handle, url.path, &options) }
        }
        try GitLibrary.check(code, "cannot create git repository at \(url.path)")
        return GitRepository(handle: handle!, path: url.path)
    }

    /// Opens an existing repository (bare or not) exactly at `url`, without searching parents.
    public static func open(at url: URL) throws -> GitRepository {
        GitLibrary.ensureInitialized()
        var handle: OpaquePointer?
        let flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue | GIT_REPOSITORY_OPEN_BARE.rawValue
        try GitLibrary.check(git_repository_open_ext(&handle, url.path, flags, nil), "cannot open git repository at \(url.path)")
        return GitRepository(handle: handle!, path: url.path)
    }

    func check(_ code: Int32, _ what: @autoclosure () -> String) throws {
        try GitLibrary.check(code, "git repository \(path): \(what())")
    }

    // MARK: blobs

    /// Stores `data` as a blob. Identical bytes give the identical id, stored once.
    public func writeBlob(_ data: Data) throws -> GitOID {
        var oid = git_oid()
        let code = GitLibrary.writing { data.withUnsafeBytes { git_blob_create_from_buffer(&oid, handle, $0.baseAddress, $0.count) } }
        try check(code, "cannot write a \(data.count)-byte blob")
        return GitOID(oid)
    }

    public func readBlob(_ id: GitOID) throws -> Data {
        try checkLooseObject(id)
        var raw = id.raw
        var blob: OpaquePointer?
        try check(git_blob_lookup(&blob, handle, &raw), "cannot read blob \(id.short)")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard size > 0, let bytes = git_blob_rawcontent(blob) else { return Data() }
        return Data(bytes: bytes, count: size)
    }

    // MARK: references

    /// The commit a reference points at (following symbolic refs), or nil if there is no such ref.
    public func referenceTarget(_ name: String) throws -> GitOID? {
        var oid = git_oid()
        let code = git_reference_name_to_id(&oid, handle, name)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "cannot read reference \(name)")
        return GitOID(oid)
    }

    /// Points `name` at `target` atomically: only if it currently points at `expected`, or, with
    /// `expected` nil, only if it does not exist yet. Another writer in between makes this fail.
    public func updateReference(_ name: String, to target: GitOID, expected: GitOID?, message: String) throws {
        var oid = target.raw
        var ref: OpaquePointer?
        let code: Int32
        if let expected {
            var old = expected.raw
            code = GitLibrary.writing { git_reference_create_matching(&ref, handle, name, &oid, 1, &old, message) }
        } else {
            code = GitLibrary.writing { git_reference_create_matching(&ref, handle, name, &oid, 0, nil, message) }
        }
        let expectation = expected.map { "expected at \($0.short)" } ?? "expected not to exist"
        try check(code, "cannot move \(name) to \(target.short) (\(expectation))")
        git_reference_free(ref)
    }

    /// Every direct reference whose full name matches `glob` (e.g. "refs/heads/*"), sorted by name.
    public func references(matching glob: String) throws -> [(name: String, target: GitOID)] {
        var iterator: OpaquePointer?
        try check(git_reference_iterator_glob_new(&iterator, handle, glob), "cannot list references \(glob)")
        defer { git_reference_iterator_free(iterator) }
        var out: [(String, GitOID)] = []
        while true {
            var ref: OpaquePointer?
            let code = git_reference_next(&ref, iterator)
            if code == GIT_ITEROVER.rawValue { break }
            try check(code, "cannot list references \(glob)")
            defer { git_reference_free(ref) }
            var resolved: OpaquePointer?
            try check(git_reference_resolve(&resolved, ref), "cannot resolve reference")
            defer { git_reference_free(resolved) }
            guard let target = git_reference_target(resolved) else { continue }
            out.append((String(cString: git_reference_name(ref)), GitOID(target.pointee)))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// Whether `refs/heads/<name>`-style `name` is a valid reference name for git.
    public static func isValidReferenceName(_ name: String) -> Bool {
        GitLibrary.ensureInitialized()
        var valid: Int32 = 0
        return git_reference_name_is_valid(&valid, name) == 0 && valid == 1
    }

    // MARK: tags

    /// Creates `refs/tags/<name>` at `target`: annotated (a tag object with tagger and message) when
    /// `message` is given, lightweight otherwise. Fails if the tag exists.
    @discardableResult
    public func createTag(_ name: String, target: GitOID, message: String?) throws -> GitOID {
        var raw = target.raw
        var object: OpaquePointer?
        try check(git_object_lookup(&object, handle, &raw, GIT_OBJECT_ANY), "cannot find \(target.short) to tag")
        defer { git_object_free(object) }
        var oid = git_oid()
        if let message {
            let signature = try Signature()
            try check(git_tag_create(&oid, handle, name, object, signature.pointer, message, 0), "cannot create tag \(name)")
        } else {
            try check(git_tag_create_lightweight(&oid, handle, name, object, 0), "cannot create tag \(name)")
        }
        return GitOID(oid)
    }

    // MARK: revisions

    /// The commit a revision string names (`git rev-parse REV^{commit}`): full or short ids, branch
    /// and tag names, `main~2`, …; nil when nothing by that name exists.
    public func resolveCommit(_ revision: String) throws -> GitOID? {
        var object: OpaquePointer?
        let code = git_revparse_single(&object, handle, revision)
        if code == GIT_ENOTFOUND.rawValue || code == GIT_EINVALIDSPEC.rawValue || code == GIT_EAMBIGUOUS.rawValue { return nil }
        try check(code, "cannot resolve revision \(revision.debugDescription)")
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        let peel = git_object_peel(&commit, object, GIT_OBJECT_COMMIT)
        if peel == GIT_ENOTFOUND.rawValue || peel == GIT_EINVALIDSPEC.rawValue || peel == GIT_EPEEL.rawValue { return nil }
        try check(peel, "revision \(revision.debugDescription) does not name a commit")
        defer { git_object_free(commit) }
        return GitOID(git_object_id(commit).pointee)
    }

    /// Whether `commit` has `ancestor` in its history (a commit is not its own descendant).
    public func isDescendant(_ commit: GitOID, of ancestor: GitOID) throws -> Bool {
        var c = commit.raw, a = ancestor.raw
        let code = git_graph_descendant_of(handle, &c, &a)
        try check(code, "cannot compare \(commit.short) with \(ancestor.short)")
        return code == 1
    }
}

/// The author, committer and tagger of everything the history writes: the time is now, the name
/// fixed, so `git log` shows when each round was merged.
final class Signature {
    let pointer: UnsafeMutablePointer<git_signature>

    init(name: String = "lte", email: String = "lte@localhost") throws {
        var signature: UnsafeMutablePointer<git_signature>?
        try GitLibrary.check(git_signature_now(&signature, name, email), "cannot make a git signature")
        pointer = signature!
    }

    deinit { git_signature_free(pointer) }
}
