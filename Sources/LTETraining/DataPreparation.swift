import Foundation
import LTENumerics

/// Turns text into a prepared data directory (layout in `TokenDataset`), as nanoGPT's `prepare.py`
/// does: build the tokenizer, encode the whole stream, keep the first (1 − valFraction) of the tokens
/// for training and the rest for validation. A contiguous tail, not a random sample, so no validation
/// text leaks into training through overlapping context windows.
public enum DataPreparation {
    /// What was written, for the one-line report.
    public struct Summary: CustomStringConvertible, Sendable {
        public let directory: URL
        public let meta: DatasetMeta
        public let textBytes: Int
        public let seconds: Double

        public var description: String {
            "prepared \(directory.path): \(meta.tokenizer) tokenizer, vocab \(meta.vocabSize), "
                + "\(meta.trainTokens) train + \(meta.valTokens) val tokens from \(textBytes) bytes "
                + "(\(meta.source)) in \(String(format: "%.2f", seconds)) s"
        }
    }

    /// Reads and concatenates the input files (a newline is inserted between two files when the first
    /// does not end with one, so words never fuse across files) and prepares them.
    public static func prepare(inputs: [URL], tokenizer kind: String, out: URL, valFraction: Double = 0.1) throws -> Summary {
        let start = Date()
        guard !inputs.isEmpty else { throw LTEError("no input files given") }
        var corpus: [UInt8] = []
        for url in inputs {
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw LTEError("input file \(url.path) does not exist")
            }
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw LTEError("cannot read input file \(url.path): \(error.localizedDescription)")
            }
            guard !data.isEmpty else { throw LTEError("input file \(url.path) is empty") }
            if let last = corpus.last, last != UInt8(ascii: "\n") { corpus.append(UInt8(ascii: "\n")) }
            corpus.append(contentsOf: data)
        }
        let source = inputs.map(\.path).joined(separator: ", ")
        return try prepare(corpus: corpus, source: source, tokenizer: kind, out: out, valFraction: valFraction, startedAt: start)
    }

    /// Prepares text already in memory (UTF-8 bytes); `source` is recorded in meta.json.
    public static func prepare(corpus: [UInt8], source: String, tokenizer kind: String, out: URL, valFraction: Double = 0.1) throws -> Summary {
        try prepare(corpus: corpus, source: source, tokenizer: kind, out: out, valFraction: valFraction, startedAt: Date())
    }

    /// Generates `SyntheticCorpus` text, prepares it, and keeps the text beside the shards as
    /// `corpus.txt` (so samples can be compared with the source).
    public static func synthesize(seed: UInt64, bytes: Int = SyntheticCorpus.defaultBytes, tokenizer kind: String,
                                  out: URL, valFraction: Double = 0.1) throws -> Summary {
        let start = Date()
        guard bytes > 0 else { throw LTEError("synthetic corpus size must be positive, got \(bytes) bytes") }
        let text = SyntheticCorpus.generate(seed: seed, bytes: bytes)
        let summary = try prepare(corpus: Array(text.utf8), source: "synthetic corpus (seed \(seed), \(bytes) bytes)",
                                  tokenizer: kind, out: out, valFraction: valFraction, startedAt: start)
        let textURL = out.appendingPathComponent(corpusFile)
        do { try Data(text.utf8).write(to: textURL, options: .atomic) } catch {
            throw LTEError("cannot write \(textURL.path): \(error.localizedDescription)")
        }
        return summary
    }

    /// The raw text `synthesize` leaves in the data directory.
    public static let corpusFile = "corpus.txt"

    private static func prepare(corpus: [UInt8], source: String, tokenizer kind: String, out: URL,
                                valFraction: Double, startedAt start: Date) throws -> Summary {
        guard valFraction > 0, valFraction < 1 else {
            throw LTEError("validation fraction \(valFraction) must be strictly between 0 and 1")
        }
        guard !corpus.isEmpty else { throw LTEError("input text is empty") }
        let tokenizer = try Tokenizers.fit(kind: kind, corpus: corpus)
        let tokens = try tokenizer.encode(bytes: corpus)
        // nanoGPT: train_data = data[:int(n*0.9)]
        let trainCount = Int(Double(tokens.count) * (1 - valFraction))
        guard trainCount >= 1, trainCount < tokens.count else {
            throw LTEError("input of \(tokens.count) tokens is too short to split into train and validation sets")
        }
        do {
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        } catch {
            throw LTEError("cannot create output directory \(out.path): \(error.localizedDescription)")
        }
        try tokens.withUnsafeBufferPointer { all in
            for (name, slice) in [(TokenDataset.trainFile, 0..<trainCount), (TokenDataset.valFile, trainCount..<all.count)] {
                let writer = try TokenShardWriter(url: out.appendingPathComponent(name), vocabSize: tokenizer.vocabSize)
                try writer.append(UnsafeBufferPointer(rebasing: all[slice]))
                try writer.close()
            }
        }
        try tokenizer.save(to: out.appendingPathComponent(TokenDataset.tokenizerFile))
        let meta = DatasetMeta(tokenizer: tokenizer.kind, vocabSize: tokenizer.vocabSize,
                               trainTokens: trainCount, valTokens: tokens.count - trainCount, source: source)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let metaURL = out.appendingPathComponent(TokenDataset.metaFile)
        do {
            try encoder.encode(meta).write(to: metaURL, options: .atomic)
        } catch {
            throw LTEError("cannot write \(metaURL.path): \(error.localizedDescription)")
        }
        return Summary(directory: out, meta: meta, textBytes: corpus.count, seconds: Date().timeIntervalSince(start))
    }
}
