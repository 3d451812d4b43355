import LTEBase

/// How a float32 tensor is held or sent in fewer bits. Every format is a deterministic function of
/// the values (round-to-nearest-even on fixed blocks, no randomness), so every node that quantizes
/// the same tensor gets the same bytes, and every node that dequantizes them the same floats.
///
///   f32    4 bytes a value, exact
///   bf16   2 bytes: the upper half of the float32, rounded to nearest even
///   int8   1 byte + 4/64: per block of 64, the absolute maximum m (float32) and round(x/m·127)
///   nf4    ½ byte + ≈ 1/64: per block of 64, the index of the nearest NormalFloat-4 value of x/m;
///          the blocks' maxima themselves in 8 bits per block of 256 (QLoRA's double quantization)
public enum QuantizedFormat: String, CaseIterable, Codable, Sendable {
    case f32, bf16, int8, nf4

    /// Values per block that share one scale (int8 and nf4).
    public static let blockSize = 64
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

    /// Bytes that `count` values take in this format (scales included).
    public func byteCount(values count: Int) -> Int {
        let blocks = (count + Self.blockSize - 1) / Self.blockSize
        switch self {
        case .f32: return 4 * count
        case .bf16: return 2 * count
        case .int8: return 4 * blocks + count
        case .nf4:
            let scaleBlocks = (blocks + Self.scaleBlockSize - 1) / Self.scaleBlockSize
            return 4 + 4 * scaleBlocks + blocks + (count + 1) / 2
        }
    }
}
