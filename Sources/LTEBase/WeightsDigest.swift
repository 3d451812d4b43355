/// The weights hash of DESIGN.md §2 as a value: the 32 bytes of a SHA-256 over the main weights.
///
/// One type for every place the hash travels — computed by the store (`WeightsHash`), sent on the
/// wire (`RoundResultMessage`), compared by workers and replay — so no layer converts between hex
/// text and bytes on its own. The history records it as lowercase hex (`hex`), the wire as bytes.
/// The same type carries the second hash of a run whose frozen weights are quantized
/// (`lte.frozen_weights`): over those quantized bytes (`WeightsHash.sha256(frozen:)`).
public struct WeightsDigest: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32

    /// Exactly `byteCount` bytes.
    public let bytes: [UInt8]

    /// Nil unless `bytes` holds exactly `byteCount` bytes.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses 64 hex digits (either case); nil for anything else.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 2 * Self.byteCount else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.byteCount)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let high = Self.nibble(digits[i]), let low = Self.nibble(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    /// Lowercase hex, as the history records it and people read it.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
    }

    public var description: String { hex }

    /// The first 12 hex digits, as log lines show a hash.
    public var short: String { String(hex.prefix(12)) }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Stored as its hex text (the history's `weights_sha256`), so records read the same as before.
extension WeightsDigest: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let digest = WeightsDigest(hex: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(text.prefix(80).debugDescription) is not a SHA-256 in hex")
        }
        self = digest
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}
