import Foundation
import LTEBase

/// The `added_tokens` list of a Hugging Face tokenizer.json, read and written:
///
///     {"id": 50256, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
///      "rstrip": false, "normalized": true, "special": true}
///
/// `tokenizers` does not take the ids from the file: a token whose content is in the model's vocab
/// gets that id, the others the ids after the vocab in file order. A file whose ids disagree with that
/// would encode differently there than here, so it is refused; so is `single_word`, not implemented.
public enum HuggingFaceAddedTokens {
    static func read(_ value: Any?, vocab: [String: Any], fail: (String) -> LTEError) throws -> [AddedToken] {
        if value == nil || value is NSNull { return [] }
        guard let list = value as? [Any] else { throw fail("added_tokens must be a list") }
        var tokens: [AddedToken] = []
        var nextID = vocab.count
        for (index, entry) in list.enumerated() {
            guard let object = entry as? [String: Any], let content = object["content"] as? String,
                  let id = (object["id"] as? NSNumber)?.intValue else {
                throw fail("added_tokens[\(index)] needs an \"id\" number and a \"content\" string")
            }
            func flag(_ key: String) throws -> Bool {
                guard let value = object[key] else { return false }
                guard let bool = value as? Bool else { throw fail("added token \(content.debugDescription): \(key) must be true or false") }
                return bool
            }
            if try flag("single_word") {
                throw fail("added token \(content.debugDescription) has single_word true, which lte does not implement")
            }
            let token = try AddedToken(id: Int32(clamping: id), content: content, special: flag("special"),
                                       lstrip: flag("lstrip"), rstrip: flag("rstrip"), normalized: flag("normalized"))
            if content.isEmpty { throw fail("added_tokens[\(index)] has an empty content") }
            if tokens.contains(where: { $0.content == content }) { throw fail("added token \(content.debugDescription) is listed twice") }
            let expected: Int
            if let inVocab = (vocab[content] as? NSNumber)?.intValue {
                expected = inVocab
            } else {
                expected = nextID
                nextID += 1
            }
            guard id == expected else {
                throw fail("added token \(content.debugDescription) has id \(id), but `tokenizers` would give it \(expected) (its vocab id, or the next id after the vocab)")
            }
            tokens.append(token)
        }
        return tokens
    }

    /// One entry as tokenizer.json lists it (tokenizer_config.json's `added_tokens_decoder` takes the same less the id).
    public static func json(_ token: AddedToken) -> [String: Any] {
        ["id": Int(token.id), "content": token.content, "single_word": false, "lstrip": token.lstrip,
         "rstrip": token.rstrip, "normalized": token.normalized, "special": token.special]
    }
}
