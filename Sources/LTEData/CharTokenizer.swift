import Foundation
import LTEBase

/// One id per Unicode scalar seen in the training corpus, ids in code-point order — the vocabulary of
/// nanoGPT's shakespeare_char (`sorted(set(text))`), which gives 65 ids for tinyshakespeare.
///
/// Lookups go through a dense table for ASCII and a dictionary for everything else, so encoding a
/// megabyte is a single pass with no per-character allocation.
public struct CharTokenizer: Tokenizer, Equatable, Sendable {
    /// The characters, id i ↦ vocabulary[i], strictly increasing by code point.
    public let vocabulary: [Unicode.Scalar]
    private let asciiIDs: [Int32]                    // 128 entries, −1 where absent
    private let otherIDs: [UInt32: Int32]
    private let utf8OfID: [[UInt8]]

    public var kind: String { "char" }
    public var vocabSize: Int { vocabulary.count }

    /// A tokenizer over exactly these characters, which must be unique and sorted by code point.
    public init(vocabulary: [Unicode.Scalar]) throws {
        guard !vocabulary.isEmpty else { throw LTEError("char tokenizer vocabulary is empty") }
        for i in 1..<vocabulary.count where vocabulary[i - 1].value >= vocabulary[i].value {
            throw LTEError("char tokenizer vocabulary is not sorted and unique at entry \(i)")
        }
        self.vocabulary = vocabulary
        var ascii = [Int32](repeating: -1, count: 128)
        var other: [UInt32: Int32] = [:]
        for (id, scalar) in vocabulary.enumerated() {
            if scalar.isASCII { ascii[Int(scalar.value)] = Int32(id) } else { other[scalar.value] = Int32(id) }
        }
        asciiIDs = ascii
        otherIDs = other
        utf8OfID = vocabulary.map { Array(String($0).utf8) }
    }

    /// The vocabulary of a corpus: every distinct Unicode scalar in it.
    public init(corpus text: String) throws {
        var seenASCII = [Bool](repeating: false, count: 128)
        var seenOther = Set<UInt32>()
        for scalar in text.unicodeScalars {
            if scalar.isASCII { seenASCII[Int(scalar.value)] = true } else { seenOther.insert(scalar.value) }
        }
        var values = (0..<128).filter { seenASCII[$0] }.map { UInt32($0) }
        values += seenOther.sorted()
        try self.init(vocabulary: values.map { Unicode.Scalar($0)! })
    }

    /// The vocabulary of a UTF-8 corpus; bytes that are not valid UTF-8 are an error (use the byte
    /// tokenizer for such data).
    public init(corpus bytes: [UInt8]) throws {
        try self.init(corpus: try CharTokenizer.validatedText(bytes))
    }

    public func encode(_ text: String) throws -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            let id = scalar.isASCII ? asciiIDs[Int(scalar.value)] : (otherIDs[scalar.value] ?? -1)
            if id < 0 {
                throw LTEError("character \(String(scalar).debugDescription) (\(CharTokenizer.codePoint(scalar))) at character \(ids.count) is not in the char tokenizer's vocabulary of \(vocabSize)")
            }
            ids.append(id)
        }
        return ids
    }

    public func encode(bytes: [UInt8]) throws -> [Int32] {
        try encode(try CharTokenizer.validatedText(bytes))
    }

    /// Ids outside the vocabulary decode to U+FFFD.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count)
        for id in ids {
            if id >= 0 && Int(id) < utf8OfID.count {
                bytes.append(contentsOf: utf8OfID[Int(id)])
            } else {
                bytes.append(contentsOf: [0xEF, 0xBF, 0xBD])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func save(to url: URL) throws {
        try HuggingFaceTokenizerFile.write(self, to: url)
    }

    public static func == (a: CharTokenizer, b: CharTokenizer) -> Bool { a.vocabulary == b.vocabulary }

    /// "U+0064"
    static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    private static func validatedText(_ bytes: [UInt8]) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LTEError("text is not valid UTF-8; the char tokenizer needs UTF-8 text (the byte tokenizer takes any bytes)")
        }
        return text
    }
}
