import Foundation
import LTEBase
import LTENumerics

/// Turns text into a prepared data directory (layout in `TokenDataset`), as nanoGPT's `prepare.py`
/// does — build the tokenizer, encode the stream, keep the first (1 − valFraction) of the tokens for
/// training and the rest for validation — but streaming: text is read in blocks (`CorpusStream`),
/// encoded block by block (`StreamingEncoder`) and written as it comes (`SplitShardWriter`), so
/// memory stays bounded whatever the corpus size. The validation set is a contiguous tail, not a
/// random sample, so no validation text leaks into training through overlapping context windows.
///
/// Passes over the text: byte, one; char, two (its vocabulary is every character of the corpus);
/// BPE, a first pass over at most `bpeSampleBytes` from the start to learn the merges, then one.
public enum DataPreparation {
    /// How to prepare.
    public struct Options: Sendable {
        /// "char", "byte" or "bpe", or the path of a Hugging Face tokenizer.json to use as it is
        /// (byte-level BPE, GPT-2 style: see `HuggingFaceTokenizerFile` for what it may hold).
        public var tokenizer: String
        /// BPE only: the vocabulary size to learn (default `Tokenizers.defaultBPEVocabSize`).
        public var vocabSize: Int?
        public var valFraction: Double = 0.1
        /// Bytes read at a time.
        public var blockSize: Int = 4 << 20
        /// BPE only: merges are learned from at most this many bytes from the start of the corpus.
        public var bpeSampleBytes: Int = 64_000_000

        public init(tokenizer: String, vocabSize: Int? = nil, valFraction: Double = 0.1) {
            self.tokenizer = tokenizer
            self.vocabSize = vocabSize
            self.valFraction = valFraction
        }
    }

    /// Where a running preparation is, reported at most once a second and at the end of each pass.
    public struct Progress: CustomStringConvertible, Sendable {
        public let phase: String
        public let bytesRead: Int
        public let totalBytes: Int
        public let tokens: Int
        public let seconds: Double

        public var description: String {
            let mb = Double(bytesRead) / 1e6, total = Double(totalBytes) / 1e6
            let percent = totalBytes > 0 ? 100 * Double(bytesRead) / Double(totalBytes) : 100
            var line = String(format: "%@: %.1f / %.1f MB (%.0f %%), %.1f MB/s", phase, mb, total, percent, mb / max(seconds, 1e-3))
            if tokens > 0 { line += ", \(tokens) tokens" }
            return line
        }
    }

    /// What was written, for the one-line report.
    public struct Summary: CustomStringConvertible, Sendable {
        public let directory: URL
        public let meta: DatasetMeta
        public let textBytes: Int
        public let seconds: Double
        /// Files found in input directories and skipped as binary.
        public var skippedBinaries: [URL] = []

        public var description: String {
            "prepared \(directory.path): \(meta.tokenizer) tokenizer, vocab \(meta.vocabSize), "
                + "\(meta.trainTokens) train + \(meta.valTokens) val tokens from \(textBytes) bytes "
                + "(\(meta.source)) in \(String(format: "%.2f", seconds)) s"
        }
    }

    /// Prepares the text of these files and directories (see `CorpusStream` for how they are read).
    public static func prepare(inputs: [URL], tokenizer kind: String, out: URL, valFraction: Double = 0.1) throws -> Summary {
        try prepare(inputs: inputs, options: Options(tokenizer: kind, valFraction: valFraction), out: out)
    }

    public static func prepare(inputs: [URL], options: Options, out: URL,
                               progress: ((Progress) -> Void)? = nil) throws -> Summary {
        try checkOptions(options)
        let stream = try CorpusStream(inputs: inputs)
        return try prepare(stream: stream, source: inputs.map(\.path).joined(separator: ", "), options: options, out: out, progress: progress)
    }

    /// Prepares text already in memory (UTF-8 bytes); `source` is recorded in meta.json.
    public static func prepare(corpus: [UInt8], source: String, tokenizer kind: String, out: URL, valFraction: Double = 0.1) throws -> Summary {
        try prepare(corpus: corpus, source: source, options: Options(tokenizer: kind, valFraction: valFraction), out: out)
    }

    public static func prepare(corpus: [UInt8], source: String, options: Options, out: URL) throws -> Summary {
        try checkOptions(options)
        guard !corpus.isEmpty else { throw LTEError("input text is empty") }
        return try prepare(stream: CorpusStream(bytes: corpus), source: source, options: options, out: out, progress: nil)
    }

    /// Generates `SyntheticCorpus` text, prepares it, and keeps the text beside the shards as
    /// `corpus.txt` (so samples can be compared with the source).
    public static func synthesize(seed: UInt64, bytes: Int = SyntheticCorpus.defaultBytes, tokenizer kind: String,
                                  out: URL, valFraction: Double = 0.1) throws -> Summary {
        guard bytes > 0 else { throw LTEError("synthetic corpus size must be positive, got \(bytes) bytes") }
        let options = Options(tokenizer: kind, valFraction: valFraction)
        try checkOptions(options)
        // The text, then up to two bytes a token (uint16 ids; one token a byte at most for char and byte).
        let (product, overflow) = bytes.multipliedReportingOverflow(by: 3)
        try SystemResources.requireDisk(overflow ? .max : product, at: out, for: "a synthetic corpus of \(bytes) bytes (the text and its token shards)")
        let fm = FileManager.default
        do { try fm.createDirectory(at: out, withIntermediateDirectories: true) } catch {
            throw LTEError("cannot create output directory \(out.path): \(error.localizedDescription)")
        }
        // Written as it is generated and prepared from the file: memory stays bounded at any size.
        let textURL = out.appendingPathComponent(corpusFile)
        do {
            guard fm.createFile(atPath: textURL.path, contents: nil) else { throw LTEError.posix("cannot write \(textURL.path)") }
            let handle = try FileHandle(forWritingTo: textURL)
            defer { try? handle.close() }
            try SyntheticCorpus.stream(seed: seed, bytes: bytes) { try handle.write(contentsOf: $0) }
        } catch let e as LTEError { throw e } catch {
            throw LTEError.posix("cannot write \(textURL.path)", fallback: error)
        }
        return try prepare(stream: try CorpusStream(inputs: [textURL]), source: "synthetic corpus (seed \(seed), \(bytes) bytes)",
                           options: options, out: out, progress: nil)
    }

    /// The raw text `synthesize` leaves in the data directory.
    public static let corpusFile = "corpus.txt"

    /// True when `Options.tokenizer` names a file rather than a kind.
    static func isTokenizerFile(_ tokenizer: String) -> Bool { !Tokenizers.kinds.contains(tokenizer) }

    private static func checkOptions(_ options: Options) throws {
        if isTokenizerFile(options.tokenizer) {
            guard FileManager.default.fileExists(atPath: options.tokenizer) else {
                throw LTEError("unknown tokenizer kind '\(options.tokenizer)' (expected \(Tokenizers.kinds.joined(separator: ", ")), or the path of an existing Hugging Face tokenizer.json)")
            }
        }
        guard options.valFraction > 0, options.valFraction < 1 else {
            throw LTEError("validation fraction \(options.valFraction) must be strictly between 0 and 1")
        }
        if let vocab = options.vocabSize {
            guard options.tokenizer == "bpe" else { throw LTEError("a vocabulary size is only for the bpe tokenizer (\(options.tokenizer) decides its own)") }
            guard vocab >= 256 && vocab <= 1 << 20 else { throw LTEError("BPE vocabulary size \(vocab) must be between 256 and 1048576") }
        }
        guard options.blockSize >= 16, options.bpeSampleBytes > 0 else { throw LTEError("block and sample sizes must be positive") }
    }

    private static func prepare(stream: CorpusStream, source: String, options: Options, out: URL,
                                progress: ((Progress) -> Void)?) throws -> Summary {
        let start = Date()
        var meter = ProgressMeter(start: start, total: stream.fileBytes, report: progress)
        let tokenizer = try fitTokenizer(stream: stream, options: options, meter: &meter)

        let fm = FileManager.default
        let existed = fm.fileExists(atPath: out.path)
        do { try fm.createDirectory(at: out, withIntermediateDirectories: true) } catch {
            throw LTEError("cannot create output directory \(out.path): \(error.localizedDescription)")
        }
        var writer: SplitShardWriter?
        do {
            let encoder: any StreamingEncoder = switch tokenizer {
            case let bpe as BPETokenizer: BPEStreamEncoder(tokenizer: bpe)
            case let char as CharTokenizer: CharStreamEncoder(tokenizer: char)
            default: ByteStreamEncoder()
            }
            let shards = try SplitShardWriter(directory: out, vocabSize: tokenizer.vocabSize, splitsAnywhere: encoder.splitsAnywhere)
            writer = shards
            try encode(stream: stream, with: encoder, into: shards, blockSize: options.blockSize, meter: &meter)
            let (trainCount, valCount) = try shards.finish(valFraction: options.valFraction)
            try tokenizer.save(to: out.appendingPathComponent(TokenDataset.tokenizerFile))
            let meta = DatasetMeta(tokenizer: tokenizer.kind, vocabSize: tokenizer.vocabSize,
                                   trainTokens: trainCount, valTokens: valCount, source: source)
            try writeMeta(meta, to: out.appendingPathComponent(TokenDataset.metaFile))
            var summary = Summary(directory: out, meta: meta, textBytes: stream.fileBytes, seconds: Date().timeIntervalSince(start))
            summary.skippedBinaries = stream.skippedBinaries
            return summary
        } catch {
            // Leave no half-written data directory behind.
            writer?.removeTemporaryFile()
            for name in [TokenDataset.trainFile, TokenDataset.valFile] { try? fm.removeItem(at: out.appendingPathComponent(name)) }
            if !existed { try? fm.removeItem(at: out) }
            throw error
        }
    }

    /// The tokenizer, fitted on a first pass where its kind needs one.
    private static func fitTokenizer(stream: CorpusStream, options: Options, meter: inout ProgressMeter) throws -> any Tokenizer {
        switch options.tokenizer {
        case "char":
            var collector = CharVocabularyCollector()
            try forEachPendingSpan(stream: stream, blockSize: options.blockSize, phase: "reading characters", meter: &meter) { bytes, atEnd in
                try collector.add(bytes, atEnd: atEnd)
            }
            return try collector.tokenizer()
        case "bpe":
            var trainer = BPETrainer()
            try forEachPendingSpan(stream: stream, blockSize: options.blockSize, limit: options.bpeSampleBytes,
                                   phase: "counting words", meter: &meter) { bytes, atEnd in
                trainer.add(words: bytes, 0..<bytes.count, atEnd: atEnd)
            }
            return try trainer.train(vocabSize: options.vocabSize ?? Tokenizers.defaultBPEVocabSize)
        case "byte":
            return ByteTokenizer()
        default:
            return try Tokenizers.load(from: URL(fileURLWithPath: options.tokenizer))
        }
    }

    private static func encode(stream: CorpusStream, with encoder: any StreamingEncoder, into shards: SplitShardWriter,
                               blockSize: Int, meter: inout ProgressMeter) throws {
        var encoder = encoder
        var ids: [Int32] = [], wordStarts: [Int] = []
        try forEachPendingSpan(stream: stream, blockSize: blockSize, phase: "encoding", meter: &meter, tokens: { shards.count }) { bytes, atEnd in
            ids.removeAll(keepingCapacity: true)
            wordStarts.removeAll(keepingCapacity: true)
            let consumed = try encoder.encode(bytes, atEnd: atEnd, ids: &ids, wordStarts: &wordStarts)
            try shards.append(ids, wordStarts: wordStarts)
            return consumed
        }
    }

    /// Reads the stream block by block and hands `body` the bytes not yet consumed (what it left last
    /// time followed by the new block); `body` returns how many it consumed. The last call has `atEnd`
    /// and must consume everything.
    private static func forEachPendingSpan(stream: CorpusStream, blockSize: Int, limit: Int = .max, phase: String,
                                           meter: inout ProgressMeter, tokens: () -> Int = { 0 },
                                           _ body: (UnsafeBufferPointer<UInt8>, _ atEnd: Bool) throws -> Int) throws {
        meter.begin(phase, limit: limit)
        var pending: [UInt8] = []
        var read = 0
        try stream.forEachBlock(blockSize: blockSize, limit: limit) { block, bytesRead in
            pending.append(contentsOf: block)
            let consumed = try pending.withUnsafeBufferPointer { try body($0, false) }
            pending.removeFirst(consumed)
            read = bytesRead
            meter.update(bytesRead: bytesRead, tokens: tokens())
        }
        let consumed = try pending.withUnsafeBufferPointer { try body($0, true) }
        precondition(consumed == pending.count, "the last span must be consumed whole")
        meter.update(bytesRead: read, tokens: tokens(), force: true)
    }

    private static func writeMeta(_ meta: DatasetMeta, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { try encoder.encode(meta).write(to: url, options: .atomic) } catch {
            throw LTEError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}

/// Calls the progress callback at most once a second, and once at the end of every pass.
struct ProgressMeter {
    let start: Date
    let fileTotal: Int
    private var total: Int
    let report: ((DataPreparation.Progress) -> Void)?
    private var phase = ""
    private var phaseStart = Date()
    private var lastReport = Date.distantPast

    init(start: Date, total: Int, report: ((DataPreparation.Progress) -> Void)?) {
        self.start = start
        self.fileTotal = total
        self.total = total
        self.report = report
    }

    mutating func begin(_ phase: String, limit: Int = .max) {
        self.phase = phase
        total = min(fileTotal, limit)
        phaseStart = Date()
        lastReport = phaseStart
    }

    mutating func update(bytesRead: Int, tokens: Int, force: Bool = false) {
        guard let report else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastReport) >= 1 else { return }
        lastReport = now
        report(.init(phase: phase, bytesRead: bytesRead, totalBytes: total, tokens: tokens, seconds: now.timeIntervalSince(phaseStart)))
    }
}
