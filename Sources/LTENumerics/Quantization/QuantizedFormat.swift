import LTEBase

/// How a float32 tensor is held or sent in fewer bits. Every format is a deterministic function of
/// the values (round-to-nearest-even on fixed blocks, no randomness), so every node that quantizes
/// the same tensor gets the same bytes, and every node that dequantizes them the same floats.
///
///   f32    4 bytes a value, exact
///   bf16   2 bytes: the upper half of the float32, rounded to nearest even
///   int8   1 byte + 4/64: per block of 64, the absolute maximum m (float32) and round(x/m·127)
///          (blocks of 256 in rounds: `pushedBlockSize`)
///   nf4    ½ byte + ≈ 1/64: per block of 64, the index of the nearest NormalFloat-4 value of x/m;
///          the blocks' maxima themselves in 8 bits per block of 256 (QLoRA's double quantization)
public enum QuantizedFormat: String, CaseIterable, Codable, Sendable {
    case f32, bf16, int8, nf4

    /// Values per block that share one scale (int8 and nf4).
    public static let blockSize = 64
    /// Values per block of int8 factors and replicated changes as rounds carry them
    /// (`lte.push_format int8`): 256, so the scales cost ⅛ bit a value rather than ½ and the coded
    /// int8 (`HuffmanBytes`) stays within a quarter of float32's bytes. Frozen weights keep blocks of
    /// 64 (`blockSize`): their hash is in the history.
    public static let pushedInt8BlockSize = 256

    /// The block size of this format's values in a round (pushes and answers).
    public var pushedBlockSize: Int { self == .int8 ? Self.pushedInt8BlockSize : Self.blockSize }
    /// Block scales per block of the second quantization (nf4).
    public static let scaleBlockSize = 256

    /// One line listing the choices, for error messages.
    public static var choices: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Parses a config value, or says what the choices are.
    public init(parsing text: String, key: String) throws {
        guard let f = QuantizedFormat(rawValue: text) else {
            throw LTEError("\(key) must be one of \(Self.choices) (got \"\(text)\")")
        }
        self = f
    }

    /// Bytes that `count` values take in this format (scales included), int8 in blocks of
    /// `blockSize` values (nf4's blocks are always `QuantizedFormat.blockSize`).
    public func byteCount(values count: Int, blockSize: Int = Self.blockSize) -> Int {
        switch self {
        case .f32: return 4 * count
        case .bf16: return 2 * count
        case .int8: return 4 * ((count + blockSize - 1) / blockSize) + count
        case .nf4:
            let blocks = (count + Self.blockSize - 1) / Self.blockSize
            let scaleBlocks = (blocks + Self.scaleBlockSize - 1) / Self.scaleBlockSize
            return 4 + 4 * scaleBlocks + blocks + (count + 1) / 2
        }
    }
}
