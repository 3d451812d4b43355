import Foundation
import LTEBase

/// Encodes a text that arrives in blocks. Each call gets the bytes not yet encoded (what the last call
/// left plus the new block) and encodes the longest prefix whose ids cannot change with what follows:
/// a block may end inside a UTF-8 character or inside a BPE word, and those bytes wait for the next
/// block. The ids are the same as encoding the whole text at once.
protocol StreamingEncoder {
    /// Appends the ids of a prefix of `bytes` to `ids` (and, for BPE, the index in `ids` where each
    /// word starts to `wordStarts`); returns the length of that prefix. With `atEnd`, all of it.
    mutating func encode(_ bytes: UnsafeBufferPointer<UInt8>, atEnd: Bool, ids: inout [Int32], wordStarts: inout [Int]) throws -> Int
    /// True when the stream may be split after any token (otherwise only at `wordStarts`).
    var splitsAnywhere: Bool { get }
}

struct ByteStreamEncoder: StreamingEncoder {
    var splitsAnywhere: Bool { true }

    func encode(_ bytes: UnsafeBufferPointer<UInt8>, atEnd: Bool, ids: inout [Int32], wordStarts: inout [Int]) -> Int {
        for byte in bytes { ids.append(Int32(byte)) }
        return bytes.count
    }
}

struct CharStreamEncoder: StreamingEncoder {
    let tokenizer: CharTokenizer
    var splitsAnywhere: Bool { true }

    func encode(_ bytes: UnsafeBufferPointer<UInt8>, atEnd: Bool, ids: inout [Int32], wordStarts: inout [Int]) throws -> Int {
        let end = atEnd ? bytes.count : UTF8Boundary.completePrefix(bytes)
        ids += try tokenizer.encode(bytes: Array(bytes[0..<end]))
        return end
    }
}

struct BPEStreamEncoder: StreamingEncoder {
    let tokenizer: BPETokenizer
    var splitsAnywhere: Bool { false }

    func encode(_ bytes: UnsafeBufferPointer<UInt8>, atEnd: Bool, ids: inout [Int32], wordStarts: inout [Int]) -> Int {
        let appendWord = { (word: Range<Int>) in
            wordStarts.append(ids.count)
            tokenizer.appendWord(bytes, word, to: &ids)
        }
        guard !tokenizer.addedTokens.isEmpty else {
            return tokenizer.forEachWord(in: bytes, 0..<bytes.count, atEnd: atEnd, appendWord)
        }
        // Added tokens first; only what text to come cannot change is encoded. The last piece of text
        // may stop short of `settled`: its last words wait, as without added tokens.
        let (pieces, settled) = tokenizer.addedTokenSplitter.split(bytes, 0..<bytes.count, atEnd: atEnd)
        for piece in pieces {
            switch piece {
            case .token(let id):
                wordStarts.append(ids.count)
                ids.append(id)
            case .text(let text):
                let final = atEnd || text.upperBound < settled
                let done = tokenizer.forEachWord(in: bytes, text, atEnd: final, appendWord)
                if !final { return done }
            }
        }
        return settled
    }
}

enum UTF8Boundary {
    /// The length of `bytes` less a UTF-8 sequence cut short at its end (at most 3 bytes).
    static func completePrefix(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var i = bytes.count
        var back = 0
        while i > 0 && back < 4 {
            i -= 1
            back += 1
            let byte = bytes[i]
            if byte & 0xC0 != 0x80 {   // a lead byte (or ASCII)
                let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                return back < length ? i : bytes.count
            }
        }
        return bytes.count
    }
}

/// The distinct Unicode scalars of a text arriving in blocks: the char tokenizer's first pass.
struct CharVocabularyCollector {
    private var seenASCII = [Bool](repeating: false, count: 128)
    private var seenOther = Set<UInt32>()

    /// Takes the complete characters of `bytes` (all of them `atEnd`); returns how many bytes it took.
    mutating func add(_ bytes: UnsafeBufferPointer<UInt8>, atEnd: Bool) throws -> Int {
        let end = atEnd ? bytes.count : UTF8Boundary.completePrefix(bytes)
        guard let text = String(validating: bytes[0..<end], as: UTF8.self) else {
            throw LTEError("text is not valid UTF-8; the char tokenizer needs UTF-8 text (the byte tokenizer takes any bytes)")
        }
        for scalar in text.unicodeScalars {
            if scalar.isASCII { seenASCII[Int(scalar.value)] = true } else { seenOther.insert(scalar.value) }
        }
        return end
    }

    func tokenizer() throws -> CharTokenizer {
        var values = (0..<128).filter { seenASCII[$0] }.map { UInt32($0) }
        values += seenOther.sorted()
        return try CharTokenizer(vocabulary: values.map { Unicode.Scalar($0)! })
    }
}
