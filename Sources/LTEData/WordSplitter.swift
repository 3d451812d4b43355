/// GPT-2's pre-tokenization, on raw bytes: cuts text into the "words" that byte-level BPE merges
/// within (merges never cross a word boundary). It reproduces, match for match, the regular expression
/// Hugging Face `tokenizers` applies in its `ByteLevel` pre-tokenizer (`use_regex: true`):
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// tried leftmost-first at each position: an English contraction; a run of letters, of digits, or of
/// other symbols, each optionally led by one space (U+0020); then whitespace — all of a run that
/// ends the text, otherwise all of it but its last character (which then leads the next word, so
/// "a  b" splits as "a", " ", " b"), and a single whitespace character on its own.
///
/// Classes follow Unicode: letters are general category L*, digits N*, whitespace the White_Space
/// property (as Oniguruma's `\s`). Bytes that are not valid UTF-8 count as "other" symbols, one byte
/// at a time — `tokenizers` never sees them (it takes strings), and here they only need to round-trip.
struct WordSplitter {
    enum CharacterClass: UInt8 { case letter, digit, space, other }

    /// Classes of the Basic Multilingual Plane, looked up once each (255 = not yet looked up).
    private var bmpClasses = [UInt8](repeating: 255, count: 65_536)

    /// A splitter to park in a variable while the real one is in use elsewhere.
    static let empty = WordSplitter()

    init() {
        for byte in 0..<128 { bmpClasses[byte] = Self.classify(Unicode.Scalar(UInt8(byte))).rawValue }
    }

    /// Calls `body` with every word of `bytes[range]`, in order, as a byte range, and returns where the
    /// words not yet delivered start. With `atEnd` the text ends at `range.upperBound` and every word
    /// is delivered; otherwise more text follows, and words ending within `lookaheadMargin` bytes of
    /// the end are left for the caller to pass again with what follows.
    @discardableResult
    mutating func forEachWord(in bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, atEnd: Bool = true,
                              _ body: (Range<Int>) throws -> Void) rethrows -> Int {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let next = wordEnd(bytes, from: i, end: end)
            if !atEnd && next > end - Self.lookaheadMargin { return i }
            try body(i..<next)
            i = next
        }
        return end
    }

    /// How close to the end of a chunk a word may end and still be final whatever text follows: the
    /// pattern looks at most three characters ahead ("'re") or one character past a run, and a
    /// character is at most four bytes, so eight bytes is a safe margin.
    static let lookaheadMargin = 8

    private mutating func wordEnd(_ b: UnsafeBufferPointer<UInt8>, from i: Int, end: Int) -> Int {
        let apostrophe = UInt8(ascii: "'"), space = UInt8(ascii: " ")
        // 's 't 're 've 'm 'll 'd
        if b[i] == apostrophe, i + 1 < end {
            switch b[i + 1] {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"): return i + 2
            case UInt8(ascii: "r"), UInt8(ascii: "v"):
                if i + 2 < end, b[i + 2] == UInt8(ascii: "e") { return i + 3 }
            case UInt8(ascii: "l"):
                if i + 2 < end, b[i + 2] == UInt8(ascii: "l") { return i + 3 }
            default: break
            }
        }
        let (first, firstLength) = character(b, at: i, end: end)
        // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": a run of one class, maybe led by a space.
        var runStart = i, runClass = first
        if b[i] == space, i + 1 < end {
            let (second, _) = character(b, at: i + 1, end: end)
            if second != .space { runStart = i + 1; runClass = second }
        }
        if runClass != .space {
            var j = runStart
            while j < end {
                let (cls, length) = character(b, at: j, end: end)
                if cls != runClass { break }
                j += length
            }
            return j
        }
        // "\s+(?!\S)" then "\s+": a whitespace run, less its last character when a non-space follows.
        var j = i + firstLength, lastStart = i
        while j < end {
            let (cls, length) = character(b, at: j, end: end)
            if cls != .space { return lastStart > i ? lastStart : j }
            lastStart = j
            j += length
        }
        return j
    }

    /// The class and byte length of the character starting at `i` (an invalid byte is one "other").
    @inline(__always)
    private mutating func character(_ b: UnsafeBufferPointer<UInt8>, at i: Int, end: Int) -> (CharacterClass, Int) {
        let lead = b[i]
        if lead < 0x80 { return (CharacterClass(rawValue: bmpClasses[Int(lead)])!, 1) }
        guard let (value, length) = Self.decodeMultibyte(b, at: i, end: end) else { return (.other, 1) }
        if value < 65_536 {
            var cls = bmpClasses[Int(value)]
            if cls == 255 {
                cls = Self.classify(Unicode.Scalar(value)!).rawValue
                bmpClasses[Int(value)] = cls
            }
            return (CharacterClass(rawValue: cls)!, length)
        }
        return (Self.classify(Unicode.Scalar(value)!), length)
    }

    /// A well-formed UTF-8 sequence of 2–4 bytes at `i` (no overlongs, surrogates or values past
    /// U+10FFFF), or nil.
    private static func decodeMultibyte(_ b: UnsafeBufferPointer<UInt8>, at i: Int, end: Int) -> (UInt32, Int)? {
        let lead = b[i]
        let length: Int, low: UInt8, high: UInt8   // allowed range of the second byte
        switch lead {
        case 0xC2...0xDF: length = 2; low = 0x80; high = 0xBF
        case 0xE0: length = 3; low = 0xA0; high = 0xBF
        case 0xE1...0xEC, 0xEE, 0xEF: length = 3; low = 0x80; high = 0xBF
        case 0xED: length = 3; low = 0x80; high = 0x9F
        case 0xF0: length = 4; low = 0x90; high = 0xBF
        case 0xF1...0xF3: length = 4; low = 0x80; high = 0xBF
        case 0xF4: length = 4; low = 0x80; high = 0x8F
        default: return nil
        }
        guard i + length <= end, (low...high).contains(b[i + 1]) else { return nil }
        var value = UInt32(lead) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
        value = value << 6 | UInt32(b[i + 1] & 0x3F)
        for k in 2..<length {
            guard (0x80...0xBF).contains(b[i + k]) else { return nil }
            value = value << 6 | UInt32(b[i + k] & 0x3F)
        }
        return (value, length)
    }

    private static func classify(_ scalar: Unicode.Scalar) -> CharacterClass {
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .digit
        default: return .other
        }
    }
}
