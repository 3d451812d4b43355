import Foundation
import LTEBase
import LTETestSupport
import XCTest
@testable import LTEData

/// `lte data prepare --tokenizer FILE`: a byte-level BPE tokenizer.json made by Python's `tokenizers`
/// (Tests/Fixtures/tokenizers, from experiments/hf-fixture: its own id order, not bytes first) must
/// encode to the ids `tokenizers` gave; what lte does not implement is refused by name.
final class ForeignTokenizerTests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures/tokenizers")

    private struct Reference: Decodable { let texts: [String]; let ids: [[Int32]] }

    func testTokenizersTrainedFileEncodesToTokenizersIDs() throws {
        let url = Self.fixtures.appendingPathComponent("gpt2-style.json")
        let tokenizer = try XCTUnwrap(try Tokenizers.load(from: url) as? BPETokenizer)
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("gpt2-style-ids.json")))
        for (text, ids) in zip(reference.texts, reference.ids) {
            XCTAssertEqual(tokenizer.encode(text), ids, text)
            XCTAssertEqual(tokenizer.decode(ids), text)
        }
        XCTAssertNotEqual(tokenizer.tokenBytes[0], [0], "the fixture must not number bytes first, or that assumption would go untested")
        // Saved again (as an export ships it), it is the same tokenizer.
        let copy = try makeTemporaryDirectory().appendingPathComponent("tokenizer.json")
        try tokenizer.save(to: copy)
        let again = try XCTUnwrap(try Tokenizers.load(from: copy) as? BPETokenizer)
        XCTAssertEqual(again.tokenBytes, tokenizer.tokenBytes)
        XCTAssertEqual(again.merges, tokenizer.merges)
    }

    func testPrepareWithATokenizerFileGivesItsIDs() throws {
        let dir = try makeTemporaryDirectory()
        let file = Self.fixtures.appendingPathComponent("gpt2-style.json")
        let text = "It was the best of times, it was the worst of times. " + String(repeating: "we'll see; they've gone. ", count: 40)
        let summary = try DataPreparation.prepare(corpus: Array(text.utf8), source: "test", tokenizer: file.path, out: dir)
        XCTAssertEqual(summary.meta.tokenizer, "bpe")
        let dataset = try TokenDataset(directory: dir)
        let expected = try Tokenizers.load(from: file).encode(text)
        XCTAssertEqual(dataset.train.allTokens() + dataset.val.allTokens(), expected)
    }

    func testWhatLTEDoesNotImplementIsRefused() throws {
        let dir = try makeTemporaryDirectory()
        let original = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("gpt2-style.json"))) as? [String: Any])
        let cases: [(String, (inout [String: Any]) -> Void, String)] = [
            ("normalizer", { $0["normalizer"] = ["type": "NFC"] }, "normalizer"),
            ("single", { $0["added_tokens"] = [["id": 392, "content": "<s>", "special": true, "single_word": true]] }, "single_word"),
            ("addedID", { $0["added_tokens"] = [["id": 7, "content": "<s>", "special": true]] }, "would give it 392"),
            ("addedFlag", { $0["added_tokens"] = [["id": 392, "content": "<s>", "special": "yes"]] }, "special must be true or false"),
            ("pre", { $0["pre_tokenizer"] = ["type": "Whitespace"] }, "pre_tokenizer"),
            ("prefix", { $0["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": true, "use_regex": true] }, "pre_tokenizer"),
            ("post", { $0["post_processor"] = ["type": "TemplateProcessing"] }, "post_processor"),
            ("wordpiece", { $0["model"] = ["type": "WordPiece", "vocab": [String: Int]()] }, "WordPiece"),
            ("fallback", { var m = $0["model"] as! [String: Any]; m["byte_fallback"] = true; $0["model"] = m }, "byte_fallback"),
        ]
        for (name, change, fragment) in cases {
            var json = original
            change(&json)
            let url = dir.appendingPathComponent(name + ".json")
            try JSONSerialization.data(withJSONObject: json).write(to: url)
            assertLTEError(try Tokenizers.load(from: url), contains: url.path, fragment)
        }
    }

    // MARK: - Added tokens (GPT-2's <|endoftext|> and the like)

    private func addedTokensFixture() throws -> (BPETokenizer, Reference) {
        let tokenizer = try XCTUnwrap(try Tokenizers.load(from: Self.fixtures.appendingPathComponent("added-tokens.json")) as? BPETokenizer)
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("added-tokens-ids.json")))
        return (tokenizer, reference)
    }

    func testAddedTokensEncodeToTokenizersIDs() throws {
        let (tokenizer, reference) = try addedTokensFixture()
        XCTAssertEqual(tokenizer.addedTokens.count, 7)
        XCTAssertEqual(tokenizer.vocabSize, 306, "300 in the BPE vocab, 6 added after it")
        for (text, ids) in zip(reference.texts, reference.ids) {
            XCTAssertEqual(tokenizer.encode(text), ids, text)
            // A token with lstrip or rstrip swallows whitespace: decoding gives it back only without them.
            if !["<|im_start|>", "[MASK]", "<tab>"].contains(where: text.contains) { XCTAssertEqual(tokenizer.decode(ids), text) }
        }
        XCTAssertTrue(reference.ids.joined().contains(0) && reference.ids.joined().contains(305), "the fixture must use the tokens")
        // Written out (as an export ships it) and read back: the same tokenizer, flags and all.
        let copy = try makeTemporaryDirectory().appendingPathComponent("tokenizer.json")
        try tokenizer.save(to: copy)
        let again = try XCTUnwrap(try Tokenizers.load(from: copy) as? BPETokenizer)
        XCTAssertEqual(again.addedTokens, tokenizer.addedTokens)
        XCTAssertEqual(again.tokenBytes, tokenizer.tokenBytes)
        XCTAssertEqual(again.merges, tokenizer.merges)
        for (text, ids) in zip(reference.texts, reference.ids) { XCTAssertEqual(again.encode(text), ids, text) }
    }

    func testAddedTokensStreamToTheIDsOfTheWholeText() throws {
        let (tokenizer, reference) = try addedTokensFixture()
        let file = Self.fixtures.appendingPathComponent("added-tokens.json")
        // Tokens, whitespace runs and words in every position relative to small blocks.
        var text = reference.texts.joined(separator: "\n")
        text += String(repeating: "times<tab>   <|im_start|>   \n\n[MASK]age of wisdom<|endoftext|> x", count: 30)
        // rstrip's whitespace, inside which a token starting with a space matches again (tokenizers overlaps them).
        text += String(repeating: "a<tab> wisdom<tab>  wisdom <tab>\u{3000} wisdom", count: 12)
        text += "   <|im_start|>      "
        let expected = tokenizer.encode(text)
        XCTAssertGreaterThan(expected.filter { $0 >= 300 || $0 == 0 }.count, 150)
        let dir = try makeTemporaryDirectory()
        for blockSize in [16, 17, 23, 1 << 20] {
            var options = DataPreparation.Options(tokenizer: file.path)
            options.blockSize = blockSize
            let out = dir.appendingPathComponent("blocks-\(blockSize)")
            try DataPreparation.prepare(corpus: Array(text.utf8), source: "test", options: options, out: out)
            let dataset = try TokenDataset(directory: out)
            XCTAssertEqual(dataset.train.allTokens() + dataset.val.allTokens(), expected, "blocks of \(blockSize)")
            XCTAssertEqual(dataset.tokenizer.vocabSize, 306)
        }
    }
}
