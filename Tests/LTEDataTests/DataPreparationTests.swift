import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEData

final class DataPreparationTests: XCTestCase {
    func testPrepareTinyShakespeareLikeNanoGPT() throws {
        let input = try tinyShakespeareURL()
        let out = try makeTemporaryDirectory().appendingPathComponent("shakespeare_char")
        let summary = try DataPreparation.prepare(inputs: [input], tokenizer: "char", out: out)
        XCTAssertEqual(summary.meta, DatasetMeta(tokenizer: "char", vocabSize: 65, trainTokens: 1_003_854,
                                                 valTokens: 111_540, source: input.path))
        XCTAssertTrue(summary.description.hasPrefix("prepared \(out.path): char tokenizer, vocab 65, 1003854 train + 111540 val tokens"))
        XCTAssertFalse(summary.description.contains("\n"))

        let dataset = try TokenDataset(directory: out)
        XCTAssertEqual(dataset.vocabSize, 65)
        XCTAssertEqual(dataset.meta, summary.meta)
        XCTAssertEqual(dataset.train.bytesPerToken, 2)
        let text = try String(contentsOf: input, encoding: .utf8)
        XCTAssertEqual(dataset.tokenizer.decode(dataset.train.allTokens() + dataset.val.allTokens()), text)
        XCTAssertTrue(text.hasPrefix(dataset.tokenizer.decode(Array(dataset.train.allTokens().prefix(100)))))
    }

    func testPrepareConcatenatesInputsWithByteTokenizer() throws {
        let dir = try makeTemporaryDirectory()
        let first = dir.appendingPathComponent("a.txt"), second = dir.appendingPathComponent("b.txt")
        try Data(String(repeating: "alpha beta ", count: 10).utf8).write(to: first)  // no final newline
        try Data("gamma ☃\n".utf8).write(to: second)
        let out = dir.appendingPathComponent("data")
        let summary = try DataPreparation.prepare(inputs: [first, second], tokenizer: "byte", out: out, valFraction: 0.25)
        let dataset = try TokenDataset(directory: out)
        XCTAssertTrue(dataset.tokenizer is ByteTokenizer)
        let expected = String(repeating: "alpha beta ", count: 10) + "\ngamma ☃\n"
        let total = expected.utf8.count
        XCTAssertEqual(summary.meta.trainTokens, Int(Double(total) * 0.75))
        XCTAssertEqual(summary.meta.valTokens, total - Int(Double(total) * 0.75))
        XCTAssertEqual(dataset.tokenizer.decode(dataset.train.allTokens() + dataset.val.allTokens()), expected)
        XCTAssertEqual(dataset.meta.source, "\(first.path), \(second.path)")
    }

    func testPrepareReportsBadInput() throws {
        let dir = try makeTemporaryDirectory()
        let out = dir.appendingPathComponent("out")
        let missing = dir.appendingPathComponent("missing.txt")
        let empty = dir.appendingPathComponent("empty.txt")
        let text = dir.appendingPathComponent("text.txt")
        try Data().write(to: empty)
        try Data("some text to split".utf8).write(to: text)
        assertLTEError(try DataPreparation.prepare(inputs: [missing], tokenizer: "char", out: out), contains: missing.path, "does not exist")
        assertLTEError(try DataPreparation.prepare(inputs: [empty], tokenizer: "char", out: out), contains: empty.path, "is empty")
        assertLTEError(try DataPreparation.prepare(inputs: [], tokenizer: "char", out: out), contains: "no input files")
        assertLTEError(try DataPreparation.prepare(inputs: [text], tokenizer: "sentencepiece", out: out), contains: "unknown tokenizer kind 'sentencepiece'")
        assertLTEError(try DataPreparation.prepare(inputs: [text], tokenizer: "char", out: out, valFraction: 0), contains: "strictly between 0 and 1")
        assertLTEError(try DataPreparation.prepare(inputs: [text], tokenizer: "char", out: out, valFraction: 1), contains: "strictly between 0 and 1")
        assertLTEError(try DataPreparation.prepare(corpus: Array("x".utf8), source: "tiny", tokenizer: "char", out: out), contains: "too short")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written on error")
    }

    func testSynthesizeWritesCorpusAndDataset() throws {
        let out = try makeTemporaryDirectory().appendingPathComponent("synth")
        let summary = try DataPreparation.synthesize(seed: 5, bytes: 40_000, tokenizer: "char", out: out)
        let corpus = try String(contentsOf: out.appendingPathComponent("corpus.txt"), encoding: .utf8)
        XCTAssertEqual(corpus, SyntheticCorpus.generate(seed: 5, bytes: 40_000))
        let dataset = try TokenDataset(directory: out)
        XCTAssertEqual(dataset.meta, summary.meta)
        XCTAssertEqual(summary.meta.trainTokens + summary.meta.valTokens, 40_000)
        XCTAssertEqual(dataset.tokenizer.decode(dataset.train.allTokens() + dataset.val.allTokens()), corpus)
        assertLTEError(try DataPreparation.synthesize(seed: 5, bytes: 0, tokenizer: "char", out: out), contains: "positive")
    }

    func testDatasetRejectsIncompleteOrInconsistentDirectories() throws {
        let dir = try makeTemporaryDirectory()
        let out = dir.appendingPathComponent("data")
        assertLTEError(try TokenDataset(directory: out), contains: out.path, "does not exist", "lte data prepare")
        _ = try DataPreparation.synthesize(seed: 1, bytes: 5_000, tokenizer: "char", out: out)
        XCTAssertNoThrow(try TokenDataset(directory: out))
        let fm = FileManager.default
        let metaURL = out.appendingPathComponent("meta.json")
        let tokenizerURL = out.appendingPathComponent("tokenizer.json")
        let meta = try Data(contentsOf: metaURL), tokenizer = try Data(contentsOf: tokenizerURL)

        for name in ["train.bin", "val.bin", "tokenizer.json", "meta.json"] {
            let url = out.appendingPathComponent(name), saved = url.appendingPathExtension("saved")
            try fm.moveItem(at: url, to: saved)
            assertLTEError(try TokenDataset(directory: out), contains: "data directory \(out.path) has no \(name) — run `lte data prepare` first")
            try fm.moveItem(at: saved, to: url)
        }

        try Data("{\"tokenizer\": \"char\"}".utf8).write(to: metaURL)
        assertLTEError(try TokenDataset(directory: out), contains: metaURL.path, "not valid")

        var edited = try XCTUnwrap(JSONSerialization.jsonObject(with: meta) as? [String: Any])
        edited["train_tokens"] = 17
        try JSONSerialization.data(withJSONObject: edited).write(to: metaURL)
        assertLTEError(try TokenDataset(directory: out), contains: "train.bin", "train_tokens = 17")

        try meta.write(to: metaURL)
        try ByteTokenizer().save(to: tokenizerURL)
        assertLTEError(try TokenDataset(directory: out), contains: metaURL.path, "byte tokenizer with 256")

        try tokenizer.write(to: tokenizerURL)
        try TokenShard.write([0, 1, 200], vocabSize: 256, to: out.appendingPathComponent("val.bin"))
        assertLTEError(try TokenDataset(directory: out), contains: "val.bin", "token 200 at index 2")
    }
}
