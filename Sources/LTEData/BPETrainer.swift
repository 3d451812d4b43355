import Foundation
import LTEBase

/// Learns byte-level BPE merges from word counts, deterministically.
///
/// Merge rules:
/// 1. The text is cut into words (`WordSplitter`); a word counts once per occurrence, and pairs are
///    only ever counted, and merged, inside a word.
/// 2. Every word starts as its bytes (ids 0–255). Each step takes the adjacent pair of tokens with the
///    highest count over all words (adjacent positions × word count; "aaa" holds "aa" twice, as in
///    Hugging Face's trainer); **ties go to the smallest pair of ids**,
///    left id first, then right id. The pair becomes a new token (the next id), and every occurrence
///    in every word is replaced, left to right.
/// 3. A pair whose bytes already spell an existing token is never merged (it would be a second id for
///    the same bytes, which a `tokenizer.json` vocabulary cannot hold).
/// 4. Training stops at the requested vocabulary size, or earlier when no pair is left.
///
/// The result depends only on the multiset of words, never on dictionary or file order. Pair counts
/// are updated incrementally (only words holding the merged pair are revisited), and the best pair
/// comes from a max-heap with lazily corrected counts, so tinyshakespeare trains to 4096 ids in
/// about a second.
public struct BPETrainer {
    /// Distinct words (bytes) and how often each occurs.
    public private(set) var wordCounts: [[UInt8]: Int] = [:]
    private var splitter = WordSplitter()

    public init() {}

    /// Counts the words of `bytes[range]`; returns where the words not yet counted start (all are
    /// counted `atEnd`; otherwise see `WordSplitter.forEachWord`).
    @discardableResult
    public mutating func add(words bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, atEnd: Bool = true) -> Int {
        splitter.forEachWord(in: bytes, range, atEnd: atEnd) { word in wordCounts[Array(bytes[word]), default: 0] += 1 }
    }

    /// Splits a text and counts its words.
    public mutating func add(text bytes: [UInt8]) {
        _ = bytes.withUnsafeBufferPointer { add(words: $0, 0..<$0.count) }
    }

    /// Learns merges until the vocabulary has `vocabSize` tokens (≥ 256) or no pair is left.
    public func train(vocabSize: Int) throws -> BPETokenizer {
        guard vocabSize >= 256 else { throw LTEError("BPE vocabulary size \(vocabSize) must be at least 256 (the single bytes)") }
        guard vocabSize <= 1 << 20 else { throw LTEError("BPE vocabulary size \(vocabSize) is too large (at most 1048576)") }
        // Sorted, so that the work (not only the result) is the same on every run.
        let sortedWords = wordCounts.keys.sorted { $0.lexicographicallyPrecedes($1) }
        var words = sortedWords.map { $0.map { Int32($0) } }
        let counts = sortedWords.map { wordCounts[$0]! }

        var tokenBytes = (0..<256).map { [UInt8($0)] }
        var idOfBytes: [[UInt8]: Int32] = [:]
        for (id, bytes) in tokenBytes.enumerated() { idOfBytes[bytes] = Int32(id) }
        var merges: [BPETokenizer.Merge] = []

        var pairCount: [UInt64: Int] = [:]
        var wordsWithPair: [UInt64: [Int32]] = [:]
        for (w, symbols) in words.enumerated() {
            Self.forEachPair(symbols) { key in
                pairCount[key, default: 0] += counts[w]
                wordsWithPair[key, default: []].append(Int32(w))
            }
        }
        var heap = PairHeap()
        for (key, count) in pairCount { heap.push(count: count, key: key) }
        var lastVisit = [Int](repeating: -1, count: words.count)

        var forbidden = Set<UInt64>()
        while tokenBytes.count < vocabSize, let top = heap.pop() {
            let (count, key) = top
            if forbidden.contains(key) { continue }
            let current = pairCount[key] ?? 0
            if current != count {
                if current > 0 { heap.push(count: current, key: key) }
                continue
            }
            let left = Int32(truncatingIfNeeded: key >> 32), right = Int32(truncatingIfNeeded: key)
            let joined = tokenBytes[Int(left)] + tokenBytes[Int(right)]
            if idOfBytes[joined] != nil { forbidden.insert(key); continue }   // rule 3
            let result = Int32(tokenBytes.count)
            tokenBytes.append(joined)
            idOfBytes[joined] = result
            merges.append(.init(left: left, right: right, result: result))

            var touched = Set<UInt64>()
            for w in wordsWithPair[key] ?? [] where lastVisit[Int(w)] != merges.count {
                lastVisit[Int(w)] = merges.count
                let old = words[Int(w)]
                guard let new = Self.replace(left, right, with: result, in: old) else { continue }
                let n = counts[Int(w)]
                Self.forEachPair(old) { pairCount[$0]! -= n }
                Self.forEachPair(new) { pair in
                    pairCount[pair, default: 0] += n
                    if (pair >> 32) == UInt64(result) || (pair & 0xFFFF_FFFF) == UInt64(result) {
                        touched.insert(pair)
                        if wordsWithPair[pair]?.last != w { wordsWithPair[pair, default: []].append(w) }
                    }
                }
                words[Int(w)] = new
            }
            wordsWithPair[key] = nil
            for pair in touched.sorted() { heap.push(count: pairCount[pair]!, key: pair) }
        }
        return try BPETokenizer(tokenBytes: tokenBytes, merges: merges)
    }

    /// Each adjacent pair of a word, every position counted (so "a a a" holds "a a" twice, as in
    /// Hugging Face's trainer).
    private static func forEachPair(_ symbols: [Int32], _ body: (UInt64) -> Void) {
        var i = 0
        while i + 1 < symbols.count {
            body(BPETokenizer.pairKey(symbols[i], symbols[i + 1]))
            i += 1
        }
    }

    /// The word with every non-overlapping (left, right), left to right, replaced; nil if none.
    private static func replace(_ left: Int32, _ right: Int32, with result: Int32, in symbols: [Int32]) -> [Int32]? {
        var out: [Int32] = []
        out.reserveCapacity(symbols.count)
        var i = 0, found = false
        while i < symbols.count {
            if i + 1 < symbols.count, symbols[i] == left, symbols[i + 1] == right {
                out.append(result); i += 2; found = true
            } else {
                out.append(symbols[i]); i += 1
            }
        }
        return found ? out : nil
    }
}

/// A max-heap of (count, pair) ordered by count, then by the smaller pair key (left id, then right).
struct PairHeap {
    private var entries: [(count: Int, key: UInt64)] = []

    private static func above(_ a: (count: Int, key: UInt64), _ b: (count: Int, key: UInt64)) -> Bool {
        a.count != b.count ? a.count > b.count : a.key < b.key
    }

    mutating func push(count: Int, key: UInt64) {
        entries.append((count, key))
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.above(entries[i], entries[parent]) else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (Int, UInt64)? {
        guard let top = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < entries.count, Self.above(entries[l], entries[best]) { best = l }
                if r < entries.count, Self.above(entries[r], entries[best]) { best = r }
                if best == i { break }
                entries.swapAt(i, best)
                i = best
            }
        }
        return (top.count, top.key)
    }
}
