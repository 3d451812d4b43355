/// A token Hugging Face `tokenizers` finds in the raw text before anything else runs — GPT-2's
/// `<|endoftext|>`, a chat template's `<|im_start|>` — stored in tokenizer.json's `added_tokens`. The
/// text around it goes through pre-tokenization and BPE as if the token were not there; the token
/// itself becomes its one id.
public struct AddedToken: Equatable, Sendable {
    public var id: Int32
    public var content: String
    /// Special tokens are what `decode(skip_special_tokens=True)` drops; matching treats both alike.
    public var special: Bool
    /// The token takes the whitespace before it (`lstrip`) or after it (`rstrip`) into its match.
    public var lstrip: Bool
    public var rstrip: Bool
    /// `tokenizers` matches normalized tokens in a second pass, in the pieces the others left.
    public var normalized: Bool

    public init(id: Int32, content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false, normalized: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
    }
}

/// Cuts text into added tokens and the text between them, match for match as `tokenizers`'
/// `AddedVocabulary::extract_and_normalize` does (no normalizer): first the tokens with `normalized`
/// false over the whole text, then those with `normalized` true inside each piece of text left. Each
/// pass is a leftmost-longest scan (aho-corasick's `LeftmostLongest`) that resumes at the end of the
/// match itself, not of the whitespace `rstrip` took; `lstrip` takes whitespace back to the end of the
/// previous piece at most. `single_word` is not implemented: such files are refused when read.
///
/// Works on bytes, which for valid UTF-8 finds exactly the matches a search over characters finds.
struct AddedTokenSplitter: Sendable {
    enum Piece: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    private struct Pattern: Sendable { let bytes: [UInt8]; let token: AddedToken }

    /// Per pass, the patterns by first byte, longest first (so the first that matches is the longest).
    private let passes: [[UInt8: [Pattern]]]
    /// The longest pattern, in bytes: how far back a match still unseen could start.
    let longest: Int

    init(_ tokens: [AddedToken]) {
        var first: [UInt8: [Pattern]] = [:], second: [UInt8: [Pattern]] = [:]
        for token in tokens {
            let pattern = Pattern(bytes: Array(token.content.utf8), token: token)
            if token.normalized { second[pattern.bytes[0], default: []].append(pattern) } else { first[pattern.bytes[0], default: []].append(pattern) }
        }
        passes = [first, second].map { $0.mapValues { $0.sorted { $0.bytes.count > $1.bytes.count } } }
        longest = tokens.map(\.content.utf8.count).max() ?? 0
    }

    /// The pieces of `bytes[range]`, in order. With `atEnd` false more text follows `range`, and only
    /// the pieces no following text can change are given: the result's `settled` is where they end
    /// (the last text piece may end there, short of text it would have included).
    func split(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, atEnd: Bool) -> (pieces: [Piece], settled: Int) {
        var (pieces, settled) = scan(b, range, pass: passes[0], complete: atEnd)
        guard !passes[1].isEmpty else { return (pieces, settled) }
        var result: [Piece] = []
        for (index, piece) in pieces.enumerated() {
            guard case .text(let text) = piece else { result.append(piece); continue }
            let last = index == pieces.count - 1
            let inner = scan(b, text, pass: passes[1], complete: atEnd || !last || text.upperBound < settled)
            result += inner.pieces
            if last && !atEnd && text.upperBound == settled { settled = inner.settled }
        }
        return (result, settled)
    }

    /// One pass over `range`. `complete`: the range is the whole piece.
    private func scan(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, pass: [UInt8: [Pattern]],
                      complete: Bool) -> (pieces: [Piece], settled: Int) {
        var pieces: [Piece] = []
        var startOffset = range.lowerBound, position = range.lowerBound
        var unsafeStart: Int?
        var lastToken: (at: Int, piecesBefore: Int, startOffsetBefore: Int)?
        while let (at, pattern) = nextMatch(b, from: position, before: range.upperBound, in: pass) {
            // Incomplete text: a longer token, or one starting earlier, may still end past the range.
            if !complete && at + longest > range.upperBound { unsafeStart = at; break }
            var start = at, stop = at + pattern.bytes.count
            if pattern.token.lstrip { start = max(Self.whitespaceStart(b, before: at, notBefore: range.lowerBound), startOffset) }
            if pattern.token.rstrip {
                stop = Self.whitespaceEnd(b, from: stop, end: range.upperBound)
                if !complete && stop == range.upperBound { unsafeStart = at; break }   // more whitespace may follow
            }
            lastToken = (at, pieces.count, startOffset)
            if startOffset < start { pieces.append(.text(startOffset..<start)) }
            pieces.append(.token(pattern.token.id))
            startOffset = stop
            position = at + pattern.bytes.count
        }
        // After an rstrip the scan goes on inside the whitespace it took (a token starting with a space
        // may match there, and overlap it). If such a match could still end past the range, the token
        // before is not settled either: it is taken back and found again with what follows.
        if !complete, let last = lastToken, position < startOffset, startOffset - 1 + longest > range.upperBound {
            pieces.removeSubrange(last.piecesBefore...)
            startOffset = last.startOffsetBefore
            unsafeStart = last.at
        }
        let settled = complete ? range.upperBound : unsafeStart ?? max(startOffset, range.upperBound - max(longest - 1, 0))
        if startOffset < settled { pieces.append(.text(startOffset..<settled)) }
        return (pieces, settled)
    }

    /// The leftmost match at or after `from`, the longest there, wholly before `end`.
    private func nextMatch(_ b: UnsafeBufferPointer<UInt8>, from: Int, before end: Int, in pass: [UInt8: [Pattern]]) -> (Int, Pattern)? {
        guard !pass.isEmpty else { return nil }
        var i = from
        while i < end {
            if let candidates = pass[b[i]] {
                for pattern in candidates where i + pattern.bytes.count <= end {
                    if pattern.bytes.indices.allSatisfy({ b[i + $0] == pattern.bytes[$0] }) { return (i, pattern) }
                }
            }
            i += 1
        }
        return nil
    }

    /// Where the whitespace run ending at `before` starts (Unicode White_Space, as Rust's `is_whitespace`).
    private static func whitespaceStart(_ b: UnsafeBufferPointer<UInt8>, before: Int, notBefore: Int) -> Int {
        var i = before
        while i > notBefore {
            var lead = i - 1
            while lead > notBefore, b[lead] & 0xC0 == 0x80, i - lead < 4 { lead -= 1 }
            guard let scalar = scalar(b, at: lead, end: i), scalar.properties.isWhitespace else { break }
            i = lead
        }
        return i
    }

    /// Where the whitespace run starting at `from` ends.
    private static func whitespaceEnd(_ b: UnsafeBufferPointer<UInt8>, from: Int, end: Int) -> Int {
        var i = from
        while i < end {
            let length = b[i] < 0x80 ? 1 : b[i] >= 0xF0 ? 4 : b[i] >= 0xE0 ? 3 : 2
            guard i + length <= end, let scalar = scalar(b, at: i, end: i + length), scalar.properties.isWhitespace else { break }
            i += length
        }
        return i
    }

    /// The one scalar `b[start..<end]` spells in UTF-8, or nil.
    private static func scalar(_ b: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> Unicode.Scalar? {
        guard let text = String(validating: b[start..<end], as: UTF8.self), text.unicodeScalars.count == 1 else { return nil }
        return text.unicodeScalars.first
    }
}
