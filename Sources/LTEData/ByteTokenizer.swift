import Foundation

/// 256 ids, one per byte of the UTF-8 encoding: any text (or binary) can be encoded, nothing is
/// unknown, and nothing needs to be stored beyond the kind.
public struct ByteTokenizer: Tokenizer, Equatable, Sendable {
    public init() {}

    public var kind: String { "byte" }
    public var vocabSize: Int { 256 }

    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count)
        for byte in text.utf8 { ids.append(Int32(byte)) }
        return ids
    }

    public func encode(bytes: [UInt8]) -> [Int32] {
        bytes.map { Int32($0) }
    }

    /// Ids outside 0..<256 are dropped; byte sequences that are not valid UTF-8 decode to U+FFFD.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count)
        for id in ids where id >= 0 && id < 256 { bytes.append(UInt8(id)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes themselves: the exact inverse of `encode(bytes:)`.
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count)
        for id in ids where id >= 0 && id < 256 { bytes.append(UInt8(id)) }
        return bytes
    }

    public func save(to url: URL) throws {
        try HuggingFaceTokenizerFile.write(self, to: url)
    }
}
