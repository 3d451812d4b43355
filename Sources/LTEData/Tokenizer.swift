import Foundation
import LTEBase

/// Turns text into token ids and back. A model's vocabulary size is its tokenizer's.
///
/// Encoding throws because a tokenizer fitted to one corpus (`CharTokenizer`) cannot represent
/// characters it never saw; silently mapping them to some other id would corrupt training data.
/// Decoding never throws: it is used to show samples, where a replacement character is enough.
public protocol Tokenizer: Sendable {
    /// The name written to `meta.json`: "char", "byte" or "bpe".
    var kind: String { get }
    /// Number of distinct ids; every id is in `0 ..< vocabSize`.
    var vocabSize: Int { get }
    func encode(_ text: String) throws -> [Int32]
    func encode(bytes: [UInt8]) throws -> [Int32]
    func decode(_ ids: [Int32]) -> String
    /// The bytes the ids stand for (for the byte and BPE tokenizers, exactly what was encoded).
    func decodeBytes(_ ids: [Int32]) -> [UInt8]
    /// Writes `tokenizer.json`, a Hugging Face tokenizer file (`HuggingFaceTokenizerFile`) for every kind.
    func save(to url: URL) throws
}

extension Tokenizer {
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] { Array(decode(ids).utf8) }
}

/// The form char and byte tokenizers were saved in before they wrote Hugging Face files, still read
/// so older data directories, checkpoints and histories load: `type` names the kind, `vocab` lists a
/// char tokenizer's characters in id order (absent for the byte tokenizer, whose vocabulary is fixed).
struct TokenizerFile: Codable {
    var type: String
    var vocab: [String]?
}

/// The tokenizers this build can fit, by the name `meta.json` and `lte data --tokenizer` give them.
public enum TokenizerKind: String, CaseIterable, Sendable {
    /// One id per character of the corpus.
    case char
    /// 256 ids, the raw bytes.
    case byte
    /// Byte-level BPE, GPT-2 style, learned from the corpus.
    case bpe
}

/// Building and loading tokenizers by kind name, as the CLI and data directories refer to them.
public enum Tokenizers {
    /// The kinds `fit` and `load` understand.
    public static let kinds = TokenizerKind.allCases.map(\.rawValue)

    /// The BPE vocabulary size when none is given.
    public static let defaultBPEVocabSize = 4096

    /// A tokenizer of the given kind for this corpus (UTF-8 bytes). The char tokenizer takes its
    /// vocabulary from the corpus, BPE learns `vocabSize` tokens from it; the byte tokenizer ignores it.
    public static func fit(kind: String, corpus: [UInt8], vocabSize: Int? = nil) throws -> any Tokenizer {
        try checkKind(kind)
        switch kind {
        case "char": return try CharTokenizer(corpus: corpus)
        case "bpe":
            var trainer = BPETrainer()
            trainer.add(text: corpus)
            return try trainer.train(vocabSize: vocabSize ?? defaultBPEVocabSize)
        default: return ByteTokenizer()
        }
    }

    /// Throws the usual error for a kind name this build does not know.
    public static func checkKind(_ kind: String) throws {
        guard kinds.contains(kind) else {
            throw LTEError("unknown tokenizer kind '\(kind)' (expected \(kinds.joined(separator: ", ")))")
        }
    }

    /// Reads a `tokenizer.json`; a missing, garbled or unknown file is an error naming the file.
    public static func load(from url: URL) throws -> any Tokenizer {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw LTEError("cannot read tokenizer file \(url.path): no such file or not readable")
        }
        return try decode(data, source: url)
    }

    /// The Hugging Face form (`HuggingFaceTokenizerFile`) of a tokenizer file in any form this code
    /// reads — what an export ships, so runs whose history holds the older form export loadable files.
    public static func huggingFaceData(_ data: Data, source: URL) throws -> Data {
        try HuggingFaceTokenizerFile.data(of: decode(data, source: source))
    }

    /// Parses a tokenizer file's bytes; `source` names it in errors.
    public static func decode(_ data: Data, source url: URL) throws -> any Tokenizer {
        if let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any], HuggingFaceTokenizerFile.matches(json) {
            return try HuggingFaceTokenizerFile.read(json, from: url)
        }
        let file: TokenizerFile
        do {
            file = try JSONDecoder().decode(TokenizerFile.self, from: data)
        } catch {
            throw LTEError("tokenizer file \(url.path) is not valid JSON of the form {\"type\": \"char\"|\"byte\", …} nor a Hugging Face BPE tokenizer")
        }
        switch file.type {
        case "byte":
            return ByteTokenizer()
        case "char":
            guard let vocab = file.vocab else {
                throw LTEError("tokenizer file \(url.path): a char tokenizer needs a \"vocab\" list")
            }
            var scalars: [Unicode.Scalar] = []
            scalars.reserveCapacity(vocab.count)
            for entry in vocab {
                let view = entry.unicodeScalars
                guard view.count == 1, let scalar = view.first else {
                    throw LTEError("tokenizer file \(url.path): vocab entry \(entry.debugDescription) is not a single character")
                }
                scalars.append(scalar)
            }
            do {
                return try CharTokenizer(vocabulary: scalars)
            } catch let error as LTEError {
                throw LTEError("tokenizer file \(url.path): \(error.message)")
            }
        default:
            throw LTEError("tokenizer file \(url.path) has unknown type '\(file.type)' (expected char or byte)")
        }
    }
}
