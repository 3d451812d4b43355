import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEData

final class BPETokenizerTests: XCTestCase {
    /// Words as Hugging Face's ByteLevel pre-tokenizer gives them (checked with tokenizers 0.23).
    func testWordSplitterFollowsTheGPT2Pattern() {
        func words(_ text: String) -> [String] {
            var splitter = WordSplitter()
            var out: [String] = []
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBufferPointer { buffer in
                splitter.forEachWord(in: buffer, 0..<buffer.count) { out.append(String(decoding: buffer[$0], as: UTF8.self)) }
            }
            XCTAssertEqual(out.joined(), text)
            return out
        }
        XCTAssertEqual(words("Hello world's  end\n\n 123 !!"), ["Hello", " world", "'s", " ", " end", "\n\n", " 123", " !!"])
        XCTAssertEqual(words("don't 're'RE x'll\t\ty  "), ["don", "'t", " '", "re", "'", "RE", " x", "'ll", "\t", "\t", "y", "  "])
        XCTAssertEqual(words("a\u{A0}\u{A0}b naïve 日本語 ½²"), ["a", "\u{A0}", "\u{A0}", "b", " naïve", " 日本語", " ½²"])
    }

    /// The classic example: "aaabdaaabac" merges aa, then ab (a tie with (aa, a) at count 2, won by
    /// the smaller ids), then (aa, ab).
    func testTrainingPicksTheMostFrequentPairAndBreaksTiesBySmallestIDs() throws {
        var trainer = BPETrainer()
        trainer.add(text: Array("aaabdaaabac".utf8))
        let tokenizer = try trainer.train(vocabSize: 259)
        let a: Int32 = 97, b: Int32 = 98
        XCTAssertEqual(tokenizer.merges, [.init(left: a, right: a, result: 256), .init(left: a, right: b, result: 257),
                                          .init(left: 256, right: 257, result: 258)])
        XCTAssertEqual(tokenizer.encode("aaabdaaabac"), [258, 100, 258, 97, 99])
        XCTAssertEqual(tokenizer.vocabSize, 259)
        // Training stops early when no pair is left.
        XCTAssertEqual(try { var t = BPETrainer(); t.add(text: Array("ab".utf8)); return try t.train(vocabSize: 1000).vocabSize }(), 257)
        assertLTEError(try trainer.train(vocabSize: 255), contains: "at least 256")
    }

    func testRandomBytesRoundTripExactly() throws {
        var rng = SeededGenerator(seed: 42)
        var corpus = Array("To be, or not to be, that is the question: whether 'tis nobler in the mind ☃ naïve 123\n".utf8)
        corpus += (0..<20_000).map { _ in UInt8(truncatingIfNeeded: rng.next() % 7 == 0 ? rng.next() : rng.next() % 4 + 97) }
        var trainer = BPETrainer()
        trainer.add(text: corpus)
        let tokenizer = try trainer.train(vocabSize: 800)
        XCTAssertEqual(tokenizer.vocabSize, 800)
        let every = (0...255).map { UInt8($0) }
        XCTAssertEqual(tokenizer.decodeBytes(tokenizer.encode(bytes: every)), every)
        for trial in 0..<300 {
            let length = Int(rng.next() % 300)
            let bytes: [UInt8] = (0..<length).map { _ in
                switch rng.next() % 4 {
                case 0: return UInt8(truncatingIfNeeded: rng.next())            // anything, invalid UTF-8 included
                case 1: return [0x20, 0x0A, 0x27, 0xC3, 0xA9, 0xE2, 0x98, 0x83][Int(rng.next() % 8)]
                default: return UInt8(rng.next() % 4 + 97)
                }
            }
            let ids = tokenizer.encode(bytes: bytes)
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < 800 })
            XCTAssertEqual(tokenizer.decodeBytes(ids), bytes, "trial \(trial)")
        }
        XCTAssertLessThan(tokenizer.encode(bytes: corpus).count, corpus.count / 2, "merges should shorten the text they were learned on")
    }

    func testTrainingIsDeterministicAndSavedFileLoadsBackWithTheSameIDs() throws {
        let text = try Data(contentsOf: try tinyShakespeareURL())
        let start = Date()
        var forward = BPETrainer()
        forward.add(text: Array(text))
        let tokenizer = try forward.train(vocabSize: 4096)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(tokenizer.vocabSize, 4096)
        print("BPE: tinyshakespeare, 4096 ids, trained in \(String(format: "%.2f", seconds)) s")

        // The same words in another order (the halves swapped, cut at a line break) train the same merges.
        let cut = text.firstIndex(of: 0x0A, after: text.count / 2)!
        var backward = BPETrainer()
        backward.add(text: Array(text[(cut + 1)...]))
        backward.add(text: Array(text[...cut]))
        let again = try backward.train(vocabSize: 4096)
        XCTAssertEqual(again.merges, tokenizer.merges)

        let dir = try makeTemporaryDirectory()
        let first = dir.appendingPathComponent("a.json"), second = dir.appendingPathComponent("b.json")
        try tokenizer.save(to: first)
        try again.save(to: second)
        XCTAssertEqual(try Data(contentsOf: first), try Data(contentsOf: second), "same tokenizer, same bytes")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: first)) as? [String: Any])
        let model = try XCTUnwrap(json["model"] as? [String: Any])
        XCTAssertEqual(model["type"] as? String, "BPE")
        XCTAssertEqual((model["vocab"] as? [String: Any])?.count, 4096)
        XCTAssertEqual((model["merges"] as? [Any])?.count, 4096 - 256)
        XCTAssertEqual((json["pre_tokenizer"] as? [String: Any])?["type"] as? String, "ByteLevel")
        XCTAssertEqual((json["decoder"] as? [String: Any])?["type"] as? String, "ByteLevel")

        let loaded = try XCTUnwrap(try Tokenizers.load(from: first) as? BPETokenizer)
        XCTAssertEqual(loaded.kind, "bpe")
        XCTAssertEqual(loaded.tokenBytes, tokenizer.tokenBytes)
        XCTAssertEqual(loaded.merges, tokenizer.merges)
        let sample = Array(text.suffix(20_000))
        let ids = tokenizer.encode(bytes: sample)
        XCTAssertEqual(loaded.encode(bytes: sample), ids)
        XCTAssertEqual(loaded.decodeBytes(ids), sample)
        XCTAssertEqual(ids.first, tokenizer.encode(bytes: Array(sample.prefix(12))).first)
    }

    func testLoadingRejectsBrokenHuggingFaceFiles() throws {
        var trainer = BPETrainer()
        trainer.add(text: Array("the cat sat on the mat".utf8))
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("tokenizer.json")
        try trainer.train(vocabSize: 260).save(to: url)
        let good = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        func check(_ edit: (inout [String: Any]) -> Void, _ fragment: String) throws {
            var json = good
            edit(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: url)
            assertLTEError(try Tokenizers.load(from: url), contains: url.path, fragment)
        }
        try check({ var m = $0["model"] as! [String: Any]; m["type"] = "WordPiece"; $0["model"] = m }, "BPE")
        try check({ var m = $0["model"] as! [String: Any]; m["merges"] = ["Ġ zzz"]; $0["model"] = m }, "merge 0")
        try check({ var m = $0["model"] as! [String: Any]; var v = m["vocab"] as! [String: Any]; v["a"] = 9999; m["vocab"] = v; $0["model"] = m }, "vocab ids")
        try check({ $0["pre_tokenizer"] = ["type": "Whitespace"] }, "ByteLevel")
    }
}

private extension Data {
    func firstIndex(of byte: UInt8, after index: Int) -> Int? {
        self[index...].firstIndex(of: byte)
    }
}
