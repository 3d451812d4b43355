import Foundation

extension Tokenizers {
    /// How `a` and `b` differ as maps from ids to text, or nil when they are the same: the kind, the
    /// vocabulary size, or the first id that spells something else. Data from another tokenizer with
    /// the same vocabulary size would otherwise train a model on ids that mean other characters.
    public static func difference(_ a: any Tokenizer, _ b: any Tokenizer) -> String? {
        if a.kind != b.kind { return "a \(a.kind) tokenizer against a \(b.kind) one" }
        if a.vocabSize != b.vocabSize { return "\(a.vocabSize) ids against \(b.vocabSize)" }
        for id in 0..<Int32(a.vocabSize) {
            let x = a.decodeBytes([id]), y = b.decodeBytes([id])
            if x != y {
                func show(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self).debugDescription }
                return "id \(id) is \(show(x)) in one and \(show(y)) in the other"
            }
        }
        return nil
    }
}
