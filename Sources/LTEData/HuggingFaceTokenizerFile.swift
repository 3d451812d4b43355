import Foundation
import LTEBase

/// Every tokenizer of ours as a Hugging Face `tokenizer.json`, the file `tokenizers.Tokenizer.from_file`,
/// `transformers.AutoTokenizer` and GGUF converters read, and encode to the same ids:
///
///     bpe   model BPE (vocab spelled in `ByteLevelAlphabet`, merges "left right"), pre_tokenizer
///           ByteLevel with GPT-2's split (use_regex true), decoder ByteLevel
///     byte  the same with the 256 bytes and no merges, and use_regex false (no merges, so the
///           split changes nothing; it is how a byte tokenizer tells itself from a BPE one)
///     char  model BPE over the characters with no merges and no pre-tokenizer (each character is
///           its own token), decoder Fuse (decoding concatenates, with no spaces between tokens)
///
/// No normalizer, no post-processor; added tokens only where a BPE file brought from elsewhere had
/// them (`HuggingFaceAddedTokens`). Keys are sorted: the same tokenizer always writes the same bytes.
/// Reading takes these three shapes back, and any other byte-level BPE file of GPT-2's shape
/// (`lte data prepare --tokenizer FILE`); everything such a file could ask for that this code does
/// not do is refused with the key named.
enum HuggingFaceTokenizerFile {
    static func data(of tokenizer: any Tokenizer) throws -> Data {
        let byteLevel = { (regex: Bool) -> [String: Any] in
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex]
        }
        switch tokenizer {
        case let bpe as BPETokenizer:
            var spelled = bpe.tokenBytes.map(ByteLevelAlphabet.string(of:))
            let merges = bpe.merges.map { spelled[Int($0.left)] + " " + spelled[Int($0.right)] }
            for token in bpe.addedTokens { spelled[Int(token.id)] = token.content }
            return try file(vocab: Array(spelled[0..<bpe.modelVocabularyCount]), merges: merges, added: bpe.addedTokens,
                            preTokenizer: byteLevel(true), decoder: byteLevel(true))
        case let char as CharTokenizer:
            return try file(vocab: char.vocabulary.map { String($0) }, merges: [], preTokenizer: NSNull(), decoder: ["type": "Fuse"])
        default:
            let spelled = (0..<256).map { ByteLevelAlphabet.string(of: [UInt8($0)]) }
            return try file(vocab: spelled, merges: [], preTokenizer: byteLevel(false), decoder: byteLevel(false))
        }
    }

    static func write(_ tokenizer: any Tokenizer, to url: URL) throws {
        do { try data(of: tokenizer).write(to: url, options: .atomic) } catch let e as LTEError { throw e } catch {
            throw LTEError("cannot write tokenizer file \(url.path): \(error.localizedDescription)")
        }
    }

    private static func file(vocab: [String], merges: [String], added: [AddedToken] = [], preTokenizer: Any, decoder: Any) throws -> Data {
        var ids: [String: Int] = [:]
        for (id, token) in vocab.enumerated() { ids[token] = id }
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": ids, "merges": merges,
        ]
        let file: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added.map(HuggingFaceAddedTokens.json),
            "normalizer": NSNull(), "pre_tokenizer": preTokenizer, "post_processor": NSNull(),
            "decoder": decoder, "model": model,
        ]
        return try JSONSerialization.data(withJSONObject: file, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// True when the parsed JSON is a Hugging Face tokenizer (it has a `model` object).
    static func matches(_ json: [String: Any]) -> Bool { json["model"] is [String: Any] }

    /// The tokenizer of one of the shapes above; anything else is an error naming what is unsupported.
    static func read(_ json: [String: Any], from url: URL) throws -> any Tokenizer {
        func fail(_ what: String) -> LTEError { LTEError("tokenizer file \(url.path): \(what)") }
        func present(_ value: Any?) -> Any? { value is NSNull ? nil : value }
        guard let model = json["model"] as? [String: Any], model["type"] as? String == "BPE" else {
            throw fail("model.type is \((json["model"] as? [String: Any])?["type"] ?? "missing"); only BPE models (byte-level, GPT-2 style) are supported")
        }
        if let normalizer = present(json["normalizer"]) { throw fail("normalizer \(describe(normalizer)) is not supported (only null)") }
        if let post = present(json["post_processor"]), (post as? [String: Any])?["type"] as? String != "ByteLevel" {
            throw fail("post_processor \(describe(post)) is not supported (only null or ByteLevel): it would add ids")
        }
        if model["dropout"] is NSNumber { throw fail("model.dropout is set; BPE dropout is not supported") }
        for key in ["byte_fallback", "ignore_merges"] where model[key] as? Bool == true {
            throw fail("model.\(key) is true; not supported")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = present(model[key]), affix as? String != "" { throw fail("model.\(key) \(describe(affix)) is not supported") }
        }
        guard let vocab = model["vocab"] as? [String: Any], let mergeList = model["merges"] as? [Any] else {
            throw fail("model needs a \"vocab\" object and a \"merges\" list")
        }
        var tokens = [String?](repeating: nil, count: vocab.count)
        for (string, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < vocab.count, tokens[id] == nil else {
                throw fail("vocab ids must be 0..<\(vocab.count), each once (entry \(string.debugDescription))")
            }
            tokens[id] = string
        }
        let spelled = tokens.map { $0! }
        let added = try HuggingFaceAddedTokens.read(json["added_tokens"], vocab: vocab, fail: fail)
        let pre = present(json["pre_tokenizer"])
        if pre == nil, mergeList.isEmpty, (json["decoder"] as? [String: Any])?["type"] as? String == "Fuse" {
            guard added.isEmpty else { throw fail("added_tokens are supported with byte-level BPE only, not with a char tokenizer") }
            return try readChar(spelled, fail: fail)
        }
        guard let byteLevel = pre as? [String: Any], byteLevel["type"] as? String == "ByteLevel",
              byteLevel["add_prefix_space"] as? Bool != true else {
            throw fail("pre_tokenizer \(pre.map(describe) ?? "null") is not supported (only ByteLevel with add_prefix_space false)")
        }
        if let decoder = present(json["decoder"]), (decoder as? [String: Any])?["type"] as? String != "ByteLevel" {
            throw fail("decoder \(describe(decoder)) is not supported (only ByteLevel)")
        }
        // An added token's vocab entry is its content as it is (trainers put special tokens in so).
        let contentOfID = Dictionary(added.map { (Int($0.id), $0.content) }, uniquingKeysWith: { a, _ in a })
        var tokenBytes: [[UInt8]] = []
        tokenBytes.reserveCapacity(spelled.count + added.count)
        for (id, string) in spelled.enumerated() {
            if let content = contentOfID[id] { tokenBytes.append(Array(content.utf8)); continue }
            guard let bytes = ByteLevelAlphabet.bytes(of: string), !bytes.isEmpty else {
                throw fail("vocab entry \(string.debugDescription) is not spelled in the byte-level alphabet")
            }
            tokenBytes.append(bytes)
        }
        for token in added where Int(token.id) >= spelled.count { tokenBytes.append(Array(token.content.utf8)) }
        if byteLevel["use_regex"] as? Bool == false {
            guard added.isEmpty else { throw fail("added_tokens are supported with byte-level BPE only, not with the byte tokenizer") }
            guard mergeList.isEmpty, tokenBytes == (0..<256).map({ [UInt8($0)] }) else {
                throw fail("a ByteLevel pre_tokenizer with use_regex false is read only as the byte tokenizer (the 256 bytes in order, no merges)")
            }
            return ByteTokenizer()
        }
        let merges = try readMerges(mergeList, spelled, fail: fail)
        do {
            return try BPETokenizer(tokenBytes: tokenBytes, merges: merges, addedTokens: added, modelVocabularyCount: spelled.count)
        } catch let e as LTEError { throw fail(e.message) }
    }

    private static func readChar(_ spelled: [String], fail: (String) -> LTEError) throws -> CharTokenizer {
        var scalars: [Unicode.Scalar] = []
        for entry in spelled {
            guard entry.unicodeScalars.count == 1, let scalar = entry.unicodeScalars.first else {
                throw fail("char vocab entry \(entry.debugDescription) is not a single character")
            }
            scalars.append(scalar)
        }
        do { return try CharTokenizer(vocabulary: scalars) } catch let e as LTEError { throw fail(e.message) }
    }

    private static func readMerges(_ list: [Any], _ spelled: [String], fail: (String) -> LTEError) throws -> [BPETokenizer.Merge] {
        var idOfString: [String: Int32] = [:]
        for (id, s) in spelled.enumerated() { idOfString[s] = Int32(id) }
        var merges: [BPETokenizer.Merge] = []
        merges.reserveCapacity(list.count)
        for (rank, entry) in list.enumerated() {
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
        return merges
    }

    private static func describe(_ value: Any) -> String {
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }
}
