import CGit2
import Foundation
import LTEBase

/// libgit2 1.5 spins forever reading a loose object whose zlib stream is cut short (libgit2 issue
/// #7342, fixed in later releases): one truncated file would hang replay or fsck instead of failing.
/// So every object the history reads is first checked to be a complete zlib stream, here. Packed
/// objects (after a manual `git gc`) and missing ones are left to libgit2, which reports them.
extension GitRepository {
    func checkLooseObject(_ id: GitOID) throws {
        let file = objectsPath + String(id.hex.prefix(2)) + "/" + String(id.hex.dropFirst(2))
        guard FileManager.default.fileExists(atPath: file) else { return }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped) } catch {
            throw LTEError("git repository \(path): object \(id.hex) is unreadable: \(error.localizedDescription)")
        }
        let complete = data.withUnsafeBytes { lte_zlib_stream_is_complete($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
        guard complete == 1 else {
            throw LTEError("git repository \(path): object \(id.hex) is corrupt: \(file) is not a complete zlib stream (truncated or damaged)")
        }
    }
}
