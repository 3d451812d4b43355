import Foundation
import LTEBase

/// A `BPETokenizer` as a Hugging Face `tokenizer.json`, the file `tokenizers.Tokenizer.from_file` and
/// `transformers.PreTrainedTokenizerFast(tokenizer_file=…)` read:
///
///     model          {"type": "BPE", "vocab": {token: id}, "merges": ["left right", …], …}
///     pre_tokenizer  {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true, …}
///     decoder        {"type": "ByteLevel", …}
///
/// Tokens are spelled in `ByteLevelAlphabet`; no normalizer, no special or added tokens, no post-
/// processor, so `encode` there gives exactly our ids. Keys are sorted: the same tokenizer always
/// writes the same bytes.
enum HuggingFaceTokenizerFile {
    static func write(_ tokenizer: BPETokenizer, to url: URL) throws {
        var vocab: [String: Int] = [:]
        for (id, bytes) in tokenizer.tokenBytes.enumerated() { vocab[ByteLevelAlphabet.string(of: bytes)] = id }
        let merges = tokenizer.merges.map {
            ByteLevelAlphabet.string(of: tokenizer.tokenBytes[Int($0.left)]) + " " + ByteLevelAlphabet.string(of: tokenizer.tokenBytes[Int($0.right)])
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        ]
        let file: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": [Any](),
            "normalizer": NSNull(), "pre_tokenizer": byteLevel, "post_processor": NSNull(),
            "decoder": byteLevel, "model": model,
        ]
        do {
            let data = try JSONSerialization.data(withJSONObject: file, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try data.write(to: url, options: .atomic)
        } catch {
            throw LTEError("cannot write tokenizer file \(url.path): \(error.localizedDescription)")
        }
    }

    /// True when the parsed JSON is a Hugging Face tokenizer (it has a `model` object).
    static func matches(_ json: [String: Any]) -> Bool { json["model"] is [String: Any] }

    /// Reads a byte-level BPE tokenizer written by `write` (or any `tokenizer.json` of the same shape
    /// whose vocabulary holds the 256 single bytes as ids 0–255).
    static func read(_ json: [String: Any], from url: URL) throws -> BPETokenizer {
        func fail(_ what: String) -> LTEError { LTEError("tokenizer file \(url.path): \(what)") }
        guard let model = json["model"] as? [String: Any], model["type"] as? String == "BPE" else {
            throw fail("model.type is not \"BPE\" (only byte-level BPE Hugging Face tokenizers are supported)")
        }
        guard let pre = json["pre_tokenizer"] as? [String: Any], pre["type"] as? String == "ByteLevel",
              pre["add_prefix_space"] as? Bool != true, pre["use_regex"] as? Bool != false else {
            throw fail("pre_tokenizer must be ByteLevel with add_prefix_space false and use_regex true")
        }
        if let normalizer = json["normalizer"], !(normalizer is NSNull) { throw fail("normalizers are not supported") }
        guard let vocab = model["vocab"] as? [String: Any], let mergeList = model["merges"] as? [Any] else {
            throw fail("model needs a \"vocab\" object and a \"merges\" list")
        }
        var tokenBytes = [[UInt8]?](repeating: nil, count: vocab.count)
        var idOfString: [String: Int32] = [:]
        for (string, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < vocab.count, tokenBytes[id] == nil else {
                throw fail("vocab ids must be 0..<\(vocab.count), each once (entry \(string.debugDescription))")
            }
            guard let bytes = ByteLevelAlphabet.bytes(of: string), !bytes.isEmpty else {
                throw fail("vocab entry \(string.debugDescription) is not spelled in the byte-level alphabet")
            }
            tokenBytes[id] = bytes
            idOfString[string] = Int32(id)
        }
        var merges: [BPETokenizer.Merge] = []
        merges.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let parts: [String]
            if let line = entry as? String, let space = line.firstIndex(of: " ") {
                parts = [String(line[..<space]), String(line[line.index(after: space)...])]
            } else if let pair = entry as? [String], pair.count == 2 {
                parts = pair
            } else {
                throw fail("merge \(rank) is neither \"left right\" nor [left, right]")
            }
            guard let left = idOfString[parts[0]], let right = idOfString[parts[1]], let result = idOfString[parts[0] + parts[1]] else {
                throw fail("merge \(rank) (\(parts[0]) \(parts[1])) names tokens missing from the vocab")
            }
            merges.append(.init(left: left, right: right, result: result))
        }
        do {
            return try BPETokenizer(tokenBytes: tokenBytes.map { $0! }, merges: merges)
        } catch let error as LTEError {
            throw fail(error.message)
        }
    }
}
