import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEData

final class TokenizerTests: XCTestCase {
    func testCharTokenizerOnTinyShakespeareHas65CharactersAndRoundTrips() throws {
        let text = try String(contentsOf: try tinyShakespeareURL(), encoding: .utf8)
        let tokenizer = try CharTokenizer(corpus: text)
        XCTAssertEqual(tokenizer.vocabSize, 65)
        XCTAssertEqual(tokenizer.kind, "char")
        XCTAssertEqual(String(String.UnicodeScalarView(tokenizer.vocabulary.prefix(3))), "\n !")
        XCTAssertEqual(tokenizer.vocabulary.last, "z")
        let ids = try tokenizer.encode(text)
        XCTAssertEqual(ids.count, text.unicodeScalars.count)
        XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < 65 })
        XCTAssertEqual(try tokenizer.encode(bytes: Array(text.utf8)), ids)
        XCTAssertEqual(tokenizer.decode(ids), text)
    }

    func testCharVocabularyIsSortedByCodePointIncludingNonASCII() throws {
        let text = "héllo wörld ☃ — zä"
        let tokenizer = try CharTokenizer(corpus: text)
        let values = tokenizer.vocabulary.map(\.value)
        XCTAssertEqual(values, Set(text.unicodeScalars.map(\.value)).sorted())
        XCTAssertEqual(tokenizer.decode(try tokenizer.encode(text)), text)
        XCTAssertEqual(try tokenizer.encode("é"), [Int32(values.firstIndex(of: 0xE9)!)])
    }

    func testCharTokenizerRejectsCharactersOutsideItsVocabulary() throws {
        let tokenizer = try CharTokenizer(corpus: "abc")
        XCTAssertEqual(try tokenizer.encode("cab"), [2, 0, 1])
        assertLTEError(try tokenizer.encode("abd"), contains: "\"d\"", "U+0064", "character 2", "vocabulary of 3")
        assertLTEError(try CharTokenizer(corpus: [0x61, 0xFF]), contains: "not valid UTF-8")
        assertLTEError(try tokenizer.encode(bytes: [0x61, 0xC3]), contains: "not valid UTF-8")
        assertLTEError(try CharTokenizer(vocabulary: ["b", "a"]), contains: "not sorted")
        assertLTEError(try CharTokenizer(corpus: ""), contains: "empty")
    }

    func testCharDecodeMarksUnknownIDs() throws {
        let tokenizer = try CharTokenizer(corpus: "ab")
        XCTAssertEqual(tokenizer.decode([0, 7, 1, -1]), "a\u{FFFD}b\u{FFFD}")
    }

    func testByteTokenizerRoundTripsEveryByte() {
        let tokenizer = ByteTokenizer()
        XCTAssertEqual(tokenizer.vocabSize, 256)
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) } + (0...255).map { UInt8($0) }
        let ids = tokenizer.encode(bytes: bytes)
        XCTAssertEqual(ids, bytes.map { Int32($0) })
        let text = "Wherefore art thou — ☃ naïve?\n"
        XCTAssertEqual(tokenizer.encode(text), Array(text.utf8).map { Int32($0) })
        XCTAssertEqual(tokenizer.decode(tokenizer.encode(text)), text)
        XCTAssertEqual(tokenizer.decode([72, 999, 105, -3]), "Hi")
    }

    func testSaveAndLoadBothKinds() throws {
        let dir = try makeTemporaryDirectory()
        let char = try CharTokenizer(corpus: "to be, or not to be: \"that\" is the\nquestion\\ ☃")
        let charURL = dir.appendingPathComponent("char.json")
        try char.save(to: charURL)
        let loadedChar = try XCTUnwrap(try Tokenizers.load(from: charURL) as? CharTokenizer)
        XCTAssertEqual(loadedChar, char)

        let byteURL = dir.appendingPathComponent("byte.json")
        try ByteTokenizer().save(to: byteURL)
        XCTAssertTrue(try Tokenizers.load(from: byteURL) is ByteTokenizer)

        // Hugging Face files: a BPE model with no merges over the characters (no pre-tokenizer, Fuse
        // decoder), and over the 256 bytes in order (ByteLevel, use_regex false).
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: charURL)) as? [String: Any])
        let model = try XCTUnwrap(json["model"] as? [String: Any])
        XCTAssertEqual(model["type"] as? String, "BPE")
        XCTAssertEqual((model["vocab"] as? [String: Any])?.count, char.vocabSize)
        XCTAssertEqual((model["vocab"] as? [String: Any])?["☃"] as? Int, char.vocabSize - 1)
        XCTAssertEqual((model["merges"] as? [Any])?.count, 0)
        XCTAssertEqual((json["decoder"] as? [String: Any])?["type"] as? String, "Fuse")
        let byteJSON = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: byteURL)) as? [String: Any])
        XCTAssertEqual(((byteJSON["model"] as? [String: Any])?["vocab"] as? [String: Any])?["Ġ"] as? Int, 32)
    }

    /// Data directories and checkpoints written before tokenizers saved Hugging Face files.
    func testOlderCharAndByteFilesStillLoad() throws {
        let dir = try makeTemporaryDirectory()
        let charURL = dir.appendingPathComponent("char.json"), byteURL = dir.appendingPathComponent("byte.json")
        try Data(#"{"type":"char","vocab":["\n"," ","a","é"]}"#.utf8).write(to: charURL)
        try Data(#"{"type":"byte"}"#.utf8).write(to: byteURL)
        let char = try XCTUnwrap(try Tokenizers.load(from: charURL) as? CharTokenizer)
        XCTAssertEqual(try char.encode("a é\n"), [2, 1, 3, 0])
        XCTAssertTrue(try Tokenizers.load(from: byteURL) is ByteTokenizer)
        // Converted for an export, the same tokenizer.
        let converted = try Tokenizers.huggingFaceData(Data(contentsOf: charURL), source: charURL)
        XCTAssertEqual(try Tokenizers.decode(converted, source: charURL) as? CharTokenizer, char)
    }

    func testLoadRejectsMissingGarbledAndUnknownFiles() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("tokenizer.json")
        assertLTEError(try Tokenizers.load(from: url), contains: url.path, "cannot read")
        let cases: [(String, String)] = [
            ("not json at all", "not valid JSON"),
            (#"{"vocab": ["a"]}"#, "not valid JSON"),
            (#"{"type": "wordpiece"}"#, "unknown type 'wordpiece'"),
            (#"{"type": "char"}"#, "needs a \"vocab\""),
            (#"{"type": "char", "vocab": ["ab"]}"#, "not a single character"),
            (#"{"type": "char", "vocab": ["b", "a"]}"#, "not sorted"),
            (#"{"type": "char", "vocab": []}"#, "empty"),
        ]
        for (content, problem) in cases {
            try Data(content.utf8).write(to: url)
            assertLTEError(try Tokenizers.load(from: url), contains: url.path, problem)
        }
    }

    func testFitByKind() throws {
        XCTAssertEqual(try Tokenizers.fit(kind: "char", corpus: Array("hello".utf8)).vocabSize, 4)
        XCTAssertEqual(try Tokenizers.fit(kind: "byte", corpus: []).vocabSize, 256)
        XCTAssertEqual(try Tokenizers.fit(kind: "bpe", corpus: Array("hello hello".utf8), vocabSize: 258).vocabSize, 258)
        assertLTEError(try Tokenizers.fit(kind: "wordpiece", corpus: []), contains: "unknown tokenizer kind 'wordpiece'", "char, byte, bpe")
    }
}
