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
            ("added", { $0["added_tokens"] = [["id": 0, "content": "<s>", "special": true]] }, "added_tokens"),
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
}
