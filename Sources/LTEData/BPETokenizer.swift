import Foundation
import LTEBase

/// Byte-level byte-pair encoding, GPT-2 style, trained by `BPETrainer` and saved as a standard Hugging
/// Face `tokenizer.json` (see `HuggingFaceTokenizerFile`) that Python's `tokenizers` and
/// `transformers.PreTrainedTokenizerFast` load and that encodes text to the same ids.
///
/// Every single byte is a token, so every byte sequence — valid UTF-8 or not — encodes, and decoding
/// concatenates the tokens' bytes back exactly. Ours have the bytes as ids 0–255 (id = byte value) and
/// each later id the merge of two earlier tokens; a tokenizer brought from elsewhere (GPT-2's, one
/// trained with `tokenizers`) numbers them its own way, which `idOfByte` follows. Encoding cuts the text into words (`WordSplitter`) and, within each word,
/// repeatedly merges the adjacent pair whose merge rule came first in training (lowest rank; all its
/// non-overlapping occurrences, left to right) until no pair has a rule — the algorithm of GPT-2's
/// `encoder.py` and of `tokenizers`' BPE model. Words seen before are served from a cache. A tokenizer
/// brought from elsewhere may hold added tokens (GPT-2's `<|endoftext|>`), cut out of the text before
/// the words (`AddedTokenSplitter`).
public final class BPETokenizer: Tokenizer, @unchecked Sendable {
    /// One learned rule: tokens `left` and `right`, adjacent in a word, become `result`.
    public struct Merge: Equatable, Sendable {
        public var left: Int32, right: Int32, result: Int32
    }

    /// The bytes of each token, by id.
    public let tokenBytes: [[UInt8]]
    /// The merge rules in rank order (rank = index).
    public let merges: [Merge]
    /// Tokens matched in the raw text before the words are cut; their bytes are their content's.
    public let addedTokens: [AddedToken]
    /// Ids below this are the BPE model's vocabulary; the rest are added tokens only.
    public let modelVocabularyCount: Int
    let addedTokenSplitter: AddedTokenSplitter
    /// The id of each single byte's token.
    private let idOfByte: [Int32]
    private let rankOfPair: [UInt64: Int32]   // pair key → rank
    private let lock = NSLock()
    private var cache: [[UInt8]: [Int32]] = [:]
    private var splitter = WordSplitter()
    /// Words cached at most (a cache, not a vocabulary: it only bounds memory on huge corpora).
    static let cacheLimit = 1 << 20

    public var kind: String { "bpe" }
    public var vocabSize: Int { tokenBytes.count }

    /// A tokenizer from its merges; each of the 256 single bytes must be a token, and every merge's
    /// result the concatenation of its two tokens. `tokenBytes` numbers every id, the added tokens'
    /// too: those past `modelVocabularyCount` (default: all of them in the model) are added tokens only.
    public init(tokenBytes: [[UInt8]], merges: [Merge], addedTokens: [AddedToken] = [], modelVocabularyCount: Int? = nil) throws {
        let modelCount = modelVocabularyCount ?? tokenBytes.count
        var seen = Set<Int32>()
        for token in addedTokens {
            guard !token.content.isEmpty, token.id >= 0, Int(token.id) < tokenBytes.count, seen.insert(token.id).inserted,
                  tokenBytes[Int(token.id)] == Array(token.content.utf8) else {
                throw LTEError("added token \(token.content.debugDescription) (id \(token.id)) must be non-empty, have an id of its own and those bytes")
            }
        }
        let added = Set(addedTokens.map(\.id))
        if let missing = (modelCount..<tokenBytes.count).first(where: { !added.contains(Int32($0)) }) {
            throw LTEError("id \(missing) is past the BPE vocabulary (\(modelCount) ids) and is no added token")
        }
        // The model's own byte tokens: an added token of one byte (a trainer's special "\n") is not one.
        var byteIDs = [Int32](repeating: -1, count: 256)
        for (id, bytes) in tokenBytes.enumerated() where bytes.count == 1 && byteIDs[Int(bytes[0])] < 0 && !added.contains(Int32(id)) {
            byteIDs[Int(bytes[0])] = Int32(id)
        }
        if let missing = byteIDs.firstIndex(of: -1) {
            throw LTEError("a byte-level BPE vocabulary must hold all 256 single bytes (byte \(missing) has no token)")
        }
        self.idOfByte = byteIDs
        var ranks: [UInt64: Int32] = [:]
        for (rank, merge) in merges.enumerated() {
            let ids = [merge.left, merge.right, merge.result]
            guard ids.allSatisfy({ $0 >= 0 && Int($0) < tokenBytes.count }),
                  tokenBytes[Int(merge.result)] == tokenBytes[Int(merge.left)] + tokenBytes[Int(merge.right)] else {
                throw LTEError("BPE merge \(rank) (\(merge.left) + \(merge.right) → \(merge.result)) does not join its two tokens")
            }
            let key = Self.pairKey(merge.left, merge.right)
            if ranks[key] == nil { ranks[key] = Int32(rank) }
        }
        self.tokenBytes = tokenBytes
        self.merges = merges
        self.rankOfPair = ranks
        self.addedTokens = addedTokens.sorted { $0.id < $1.id }
        self.modelVocabularyCount = modelCount
        self.addedTokenSplitter = AddedTokenSplitter(addedTokens)
    }

    public func encode(_ text: String) -> [Int32] {
        encode(bytes: Array(text.utf8))
    }

    public func encode(bytes: [UInt8]) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(bytes.count / 3)
        bytes.withUnsafeBufferPointer { buffer in
            for piece in addedTokenSplitter.split(buffer, 0..<buffer.count, atEnd: true).pieces {
                switch piece {
                case .token(let id): ids.append(id)
                case .text(let text): forEachWord(in: buffer, text) { word in appendWord(buffer, word, to: &ids) }
                }
            }
        }
        return ids
    }

    /// The bytes of the tokens, concatenated: the exact inverse of `encode(bytes:)`. Ids outside the
    /// vocabulary are dropped.
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 3)
        for id in ids where id >= 0 && Int(id) < tokenBytes.count { bytes.append(contentsOf: tokenBytes[Int(id)]) }
        return bytes
    }

    /// Byte sequences that are not valid UTF-8 decode to U+FFFD.
    public func decode(_ ids: [Int32]) -> String {
        String(decoding: decodeBytes(ids), as: UTF8.self)
    }

    public func save(to url: URL) throws {
        try HuggingFaceTokenizerFile.write(self, to: url)
    }

    // MARK: - Encoding pieces, for streaming

    /// The word splitter (see `WordSplitter.forEachWord`), under the lock (it caches character classes).
    @discardableResult
    func forEachWord(in bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, atEnd: Bool = true,
                     _ body: (Range<Int>) throws -> Void) rethrows -> Int {
        lock.lock()
        var local = splitter
        splitter = WordSplitter.empty
        lock.unlock()
        defer {
            lock.lock()
            splitter = local
            lock.unlock()
        }
        return try local.forEachWord(in: bytes, range, atEnd: atEnd, body)
    }

    /// Appends the ids of one word.
    func appendWord(_ bytes: UnsafeBufferPointer<UInt8>, _ word: Range<Int>, to ids: inout [Int32]) {
        if word.count == 1 { ids.append(idOfByte[Int(bytes[word.lowerBound])]); return }
        let key = Array(bytes[word])
        lock.lock()
        let cached = cache[key]
        lock.unlock()
        if let cached { ids.append(contentsOf: cached); return }
        let encoded = mergeWord(key)
        lock.lock()
        if cache.count < Self.cacheLimit { cache[key] = encoded }
        lock.unlock()
        ids.append(contentsOf: encoded)
    }

    /// Applies the merge rules to one word, lowest rank first.
    func mergeWord(_ word: [UInt8]) -> [Int32] {
        var symbols = word.map { idOfByte[Int($0)] }
        while symbols.count > 1 {
            var bestRank = Int32.max, bestPair: (Int32, Int32) = (0, 0)
            for i in 0..<(symbols.count - 1) {
                if let rank = rankOfPair[Self.pairKey(symbols[i], symbols[i + 1])], rank < bestRank {
                    bestRank = rank
                    bestPair = (symbols[i], symbols[i + 1])
                }
            }
            if bestRank == Int32.max { break }
            let result = merges[Int(bestRank)].result
            var merged: [Int32] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count, symbols[i] == bestPair.0, symbols[i + 1] == bestPair.1 {
                    merged.append(result)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }

    @inline(__always)
    static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }
}
