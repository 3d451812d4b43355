import CGit2
import Foundation
import LTEBase

/// libgit2 set up once per process: initialised, with fsync of loose objects, refs and their
/// directories turned on (a commit that returned survives a power cut: DESIGN.md §5, "a merge the
/// workers saw is never lost"), and with every object read re-hashed (fsck relies on it).
enum GitLibrary {
    private static let setUp: Void = {
        git_libgit2_init()
        precondition(lte_git_set_fsync_gitdir(1) == 0, "libgit2 refused GIT_OPT_ENABLE_FSYNC_GITDIR")
        precondition(lte_git_set_strict_hash_verification(1) == 0, "libgit2 refused GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION")
    }()

    /// Call before any other libgit2 function (cheap after the first time).
    static func ensureInitialized() { _ = setUp }

    /// libgit2's own description of the last failure on this thread, on one line.
    static func lastErrorMessage() -> String {
        guard let e = git_error_last(), let m = e.pointee.message else { return "unknown libgit2 error" }
        return String(cString: m).split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// Throws `LTEError("<what>: <reason>")` when `code` is an error. The reason is the system's when
    /// the failure was the machine's (a full disk, a read-only file system, a file size limit): libgit2
    /// does not always say so itself, and its last message may be left over from an earlier step
    /// ("unknown libgit2 error", "failed to find pack entry" where the disk was full).
    @discardableResult
    static func check(_ code: Int32, _ what: @autoclosure () -> String) throws -> Int32 {
        guard code < 0 else { return code }
        let os = errno
        let message = lastErrorMessage()
        guard systemFailures.contains(os) else { throw LTEError("\(what()): \(message)") }
        let reason = String(cString: strerror(os))
        throw LTEError("\(what()): \(message.contains(reason) ? message : reason)")
    }

    /// errno values that say the machine refused, whatever libgit2's message.
    private static let systemFailures: Set<Int32> = [ENOSPC, EDQUOT, EFBIG, EROFS, EIO, EACCES, EPERM, ENOMEM, EMFILE, ENFILE]

    /// Runs a libgit2 call that writes, with errno cleared first, so that `check` sees only the
    /// errno this call left.
    static func writing(_ call: () -> Int32) -> Int32 {
        errno = 0
        git_error_clear()
        return call()
    }
}

/// A git object id (SHA-1), kept as its 40 lowercase hex digits.
public struct GitOID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let hex: String

    init(_ raw: git_oid) {
        var raw = raw
        hex = String(cString: git_oid_tostr_s(&raw))
    }

    /// A full 40-digit id; nil for anything else.
    public init?(hex: String) {
        guard hex.utf8.count == 40, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        self.hex = hex
    }

    var raw: git_oid {
        var o = git_oid()
        _ = git_oid_fromstrn(&o, hex, 40)
        return o
    }

    /// The first seven digits, as `git log --oneline` shows them.
    public var short: String { String(hex.prefix(7)) }
    public var description: String { hex }
    public static func < (a: GitOID, b: GitOID) -> Bool { a.hex < b.hex }
}
