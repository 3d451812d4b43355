/// GPT-2's reversible byte ↔ character mapping, which lets a byte-level vocabulary be written as JSON
/// strings (Hugging Face `tokenizers`' `ByteLevel` pre-tokenizer and decoder use the same table).
///
/// Printable bytes stand for themselves — `!`…`~` (33–126), `¡`…`¬` (161–172), `®`…`ÿ` (174–255) —
/// and the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) take the code points 256, 257, …
/// in byte order, so space (32) is `Ġ` (U+0120) and newline (10) is `Ċ` (U+010A). No byte maps to
/// U+0020, which is why a merge can be written as "left right".
public enum ByteLevelAlphabet {
    /// The character standing for each byte, indexed by byte.
    public static let characterOfByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte each character stands for.
    public static let byteOfCharacter: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (byte, scalar) in characterOfByte.enumerated() { map[scalar.value] = UInt8(byte) }
        return map
    }()

    /// The JSON-safe spelling of a token's bytes.
    public static func string(of bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(characterOfByte[Int(byte)]) }
        return String(scalars)
    }

    /// The bytes a spelled token stands for, or nil when it holds a character outside the alphabet.
    public static func bytes(of string: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for scalar in string.unicodeScalars {
            guard let byte = byteOfCharacter[scalar.value] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
