import Foundation
import LTEBase

/// A file of token ids, memory-mapped for reading.
///
/// Layout (all little-endian):
///
///     offset 0   "LTETOKEN"          8 bytes of ASCII magic
///     offset 8   version = 1         UInt32
///     offset 12  bytes per token     UInt32: 2 (uint16, vocabularies ≤ 65,536) or 4 (uint32)
///     offset 16  tokens              count × bytes-per-token
///
/// The header makes a shard self-describing (nanoGPT's headerless `.bin` files are not: reading a
/// uint32 file as uint16 trains on garbage without complaint). Opening a shard checks every token
/// against the vocabulary once, so the training loop can index embeddings without bounds checks.
public struct TokenShard: Sendable {
    public static let magic: [UInt8] = Array("LTETOKEN".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 16

    /// The narrowest width that holds every id of a vocabulary of this size.
    public static func bytesPerToken(vocabSize: Int) -> Int { vocabSize <= 65_536 ? 2 : 4 }

    public let url: URL
    /// 2 or 4.
    public let bytesPerToken: Int
    /// Number of tokens in the shard.
    public let count: Int
    private let data: Data   // the whole file, mapped

    /// Maps the file and validates header, size and every token id (< `vocabSize`).
    public init(contentsOf url: URL, vocabSize: Int) throws {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw LTEError("token shard \(path) does not exist")
        }
        let data = try Self.map(path)
        guard data.count >= Self.headerSize else {
            throw LTEError("token shard \(path) is \(data.count) bytes, too short for the \(Self.headerSize)-byte header")
        }
        let header = [UInt8](data.prefix(Self.headerSize))
        guard Array(header[0..<8]) == Self.magic else {
            throw LTEError("token shard \(path) has bad magic (expected \"LTETOKEN\"; not a token shard)")
        }
        let version = Self.uint32(header, at: 8), width = Int(Self.uint32(header, at: 12))
        guard version == Self.version else {
            throw LTEError("token shard \(path) has version \(version); this build reads version \(Self.version)")
        }
        guard width == 2 || width == 4 else {
            throw LTEError("token shard \(path) has \(width) bytes per token (expected 2 or 4)")
        }
        let payload = data.count - Self.headerSize
        guard payload % width == 0 else {
            throw LTEError("token shard \(path) has \(payload) bytes of tokens, not a multiple of \(width) bytes per token (truncated?)")
        }
        self.url = url
        self.data = data
        self.bytesPerToken = width
        self.count = payload / width
        if let (index, id) = firstTokenOutside(vocabSize: vocabSize) {
            throw LTEError("token shard \(path) has token \(id) at index \(index), outside the vocabulary of \(vocabSize)")
        }
    }

    /// The file's bytes through a read-only memory map, unmapped when the last copy of the Data goes.
    /// (Foundation's `.alwaysMapped` is only a hint, and on Linux it was seen reading a copy.)
    private static func map(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw LTEError("token shard \(path) cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw LTEError("token shard \(path) cannot be read: \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        guard size > 0 else { return Data() }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw LTEError("token shard \(path) cannot be mapped: \(String(cString: strerror(errno)))")
        }
        return Data(bytesNoCopy: p, count: size, deallocator: .custom { p, n in munmap(p, n) })
    }

    /// The token at `index` (0 ..< count).
    @inline(__always)
    public func token(at index: Int) -> Int32 {
        precondition(index >= 0 && index < count, "TokenShard.token(at:): index \(index) out of 0..<\(count)")
        return data.withUnsafeBytes { raw in
            let offset = Self.headerSize + index * bytesPerToken
            return bytesPerToken == 2
                ? Int32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
                : Int32(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        }
    }

    /// Copies tokens `start ..< start + count` into `destination`, widening to Int32.
    /// This is the batch sampler's inner loop: one pass, no allocation.
    public func copyTokens(from start: Int, count n: Int, into destination: UnsafeMutablePointer<Int32>) {
        precondition(start >= 0 && n >= 0 && start + n <= count, "TokenShard.copyTokens: \(start)..<\(start + n) out of 0..<\(count)")
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + Self.headerSize + start * bytesPerToken
            if bytesPerToken == 2 {
                for i in 0..<n {
                    destination[i] = Int32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            } else {
                for i in 0..<n {
                    destination[i] = Int32(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            }
        }
    }

    /// All tokens as an array (for tests and small shards).
    public func allTokens() -> [Int32] {
        [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { copyTokens(from: 0, count: count, into: buffer.baseAddress!) }
            initialized = count
        }
    }

    /// Writes a whole shard in one call.
    public static func write(_ tokens: [Int32], vocabSize: Int, to url: URL) throws {
        let writer = try TokenShardWriter(url: url, vocabSize: vocabSize)
        try writer.append(tokens)
        try writer.close()
    }

    /// The first (index, id) with id ∉ 0..<vocabSize, found with a branch-free max pass per chunk.
    private func firstTokenOutside(vocabSize: Int) -> (Int, UInt32)? {
        data.withUnsafeBytes { raw -> (Int, UInt32)? in
            let base = raw.baseAddress! + Self.headerSize
            let limit = UInt64(max(vocabSize, 0))
            let chunk = 4096
            var start = 0
            while start < count {
                let end = min(start + chunk, count)
                var largest: UInt32 = 0
                if bytesPerToken == 2 {
                    for i in start..<end { largest = max(largest, UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
                } else {
                    for i in start..<end { largest = max(largest, UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                }
                if UInt64(largest) >= limit {
                    for i in start..<end {
                        let id = bytesPerToken == 2
                            ? UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                            : UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                        if UInt64(id) >= limit { return (i, id) }
                    }
                }
                start = end
            }
            return nil
        }
    }

    private static func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }
}
