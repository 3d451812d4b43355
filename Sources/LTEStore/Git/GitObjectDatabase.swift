import CGit2
import Foundation

/// The object database seen whole, for fsck: list every stored object and read each one back. With
/// strict hash verification on (see `GitLibrary`), a read re-hashes the object, so a flipped byte or
/// a truncated file fails here instead of in some later replay.
extension GitRepository {
    public struct ObjectCount: Sendable, Equatable {
        public var objects = 0
        public var bytes = 0
        public var byType: [String: Int] = [:]
    }

    /// Ids of every object in the database (loose and packed), sorted.
    public func allObjectIDs() throws -> [GitOID] {
        final class Box { var ids: [GitOID] = [] }
        let box = Box()
        var odb: OpaquePointer?
        try check(git_repository_odb(&odb, handle), "cannot open the object database")
        defer { git_odb_free(odb) }
        let code = git_odb_foreach(odb, { oid, payload in
            Unmanaged<Box>.fromOpaque(payload!).takeUnretainedValue().ids.append(GitOID(oid!.pointee))
            return 0
        }, Unmanaged.passUnretained(box).toOpaque())
        try check(code, "cannot list the object database")
        return box.ids.sorted()
    }

    /// Reads (inflates and re-hashes) every object; the first unreadable one throws, naming it.
    public func verifyAllObjects() throws -> ObjectCount {
        var odb: OpaquePointer?
        try check(git_repository_odb(&odb, handle), "cannot open the object database")
        defer { git_odb_free(odb) }
        var count = ObjectCount()
        for id in try allObjectIDs() {
            try checkLooseObject(id)
            var raw = id.raw
            var object: OpaquePointer?
            try check(git_odb_read(&object, odb, &raw), "object \(id.hex) is corrupt")
            defer { git_odb_object_free(object) }
            count.objects += 1
            count.bytes += git_odb_object_size(object)
            count.byType[String(cString: git_object_type2string(git_odb_object_type(object))), default: 0] += 1
        }
        return count
    }

    /// Whether the database holds `id` (without reading it).
    public func contains(_ id: GitOID) throws -> Bool {
        var odb: OpaquePointer?
        try check(git_repository_odb(&odb, handle), "cannot open the object database")
        defer { git_odb_free(odb) }
        var raw = id.raw
        return git_odb_exists(odb, &raw) == 1
    }
}
