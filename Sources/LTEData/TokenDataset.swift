import Foundation
import LTEBase

/// What `meta.json` records about a prepared data directory, so a run can check it trains on what it
/// thinks it trains on (and a person can see it at a glance).
public struct DatasetMeta: Codable, Equatable, Sendable {
    public var tokenizer: String
    public var vocabSize: Int
    public var trainTokens: Int
    public var valTokens: Int
    /// Where the text came from: input paths, or the synthetic generator and its seed.
    public var source: String

    public init(tokenizer: String, vocabSize: Int, trainTokens: Int, valTokens: Int, source: String) {
        self.tokenizer = tokenizer
        self.vocabSize = vocabSize
        self.trainTokens = trainTokens
        self.valTokens = valTokens
        self.source = source
    }

    enum CodingKeys: String, CodingKey {
        case tokenizer, source
        case vocabSize = "vocab_size"
        case trainTokens = "train_tokens"
        case valTokens = "val_tokens"
    }
}

/// A prepared data directory, loaded and cross-checked:
///
///     DIR/train.bin       token shard, the first (1 − valFraction) of the stream
///     DIR/val.bin         token shard, the rest
///     DIR/tokenizer.json  how ids map to text
///     DIR/meta.json       tokenizer kind, vocab size, token counts, source
public struct TokenDataset: Sendable {
    public static let trainFile = "train.bin"
    public static let valFile = "val.bin"
    public static let tokenizerFile = "tokenizer.json"
    public static let metaFile = "meta.json"

    public let directory: URL
    public let meta: DatasetMeta
    public let tokenizer: any Tokenizer
    public let train: TokenShard
    public let val: TokenShard

    public var vocabSize: Int { tokenizer.vocabSize }

    public init(directory: URL) throws {
        let dir = directory.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
            throw LTEError("data directory \(dir) does not exist — run `lte data prepare` first")
        }
        guard isDirectory.boolValue else {
            throw LTEError("\(dir) is a file, not a data directory; pass the directory `lte data prepare --out` wrote (train.bin, val.bin, tokenizer.json, meta.json)")
        }
        for name in [Self.trainFile, Self.valFile, Self.tokenizerFile, Self.metaFile]
        where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            throw LTEError("data directory \(dir) has no \(name) — run `lte data prepare` first")
        }
        let metaURL = directory.appendingPathComponent(Self.metaFile)
        let meta: DatasetMeta
        do {
            meta = try JSONDecoder().decode(DatasetMeta.self, from: Data(contentsOf: metaURL))
        } catch {
            throw LTEError("\(metaURL.path) is not valid: expected {\"tokenizer\", \"vocab_size\", \"train_tokens\", \"val_tokens\", \"source\"}")
        }
        let tokenizer = try Tokenizers.load(from: directory.appendingPathComponent(Self.tokenizerFile))
        guard meta.tokenizer == tokenizer.kind, meta.vocabSize == tokenizer.vocabSize else {
            throw LTEError("\(metaURL.path) says a \(meta.tokenizer) tokenizer with vocab_size \(meta.vocabSize), but tokenizer.json holds a \(tokenizer.kind) tokenizer with \(tokenizer.vocabSize)")
        }
        let train = try TokenShard(contentsOf: directory.appendingPathComponent(Self.trainFile), vocabSize: tokenizer.vocabSize)
        let val = try TokenShard(contentsOf: directory.appendingPathComponent(Self.valFile), vocabSize: tokenizer.vocabSize)
        for (shard, expected, key) in [(train, meta.trainTokens, "train_tokens"), (val, meta.valTokens, "val_tokens")]
        where shard.count != expected {
            throw LTEError("\(shard.url.path) holds \(shard.count) tokens but \(metaURL.path) says \(key) = \(expected) — re-run `lte data prepare`")
        }
        self.directory = directory
        self.meta = meta
        self.tokenizer = tokenizer
        self.train = train
        self.val = val
    }
}
