import Foundation
import LTETestSupport
import XCTest

/// `lte data prepare` through the release binary: directories, BPE, progress lines, bad flags.
final class DataCommandTests: XCTestCase {
    func testPrepareBPEFromADirectoryThenSample() throws {
        let dir = try makeTemporaryDirectory()
        let corpus = dir.appendingPathComponent("corpus")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        let line = "the quick brown fox jumps over the lazy dog; it's a dog's life.\n"
        try Data(String(repeating: line, count: 300).utf8).write(to: corpus.appendingPathComponent("a.txt"))
        try Data(String(repeating: "naïve café ☃ 123\n", count: 300).utf8).write(to: corpus.appendingPathComponent("b.txt"))
        try Data([0x00, 0xFF, 0x10]).write(to: corpus.appendingPathComponent("blob.bin"))
        let out = dir.appendingPathComponent("data")
        let result = try LTEBinary.succeed(["data", "prepare", "--input", corpus.path, "--tokenizer", "bpe", "--vocab", "300", "--out", out.path])
        let lines = result.stdout.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("counting words: ") && $0.contains("MB/s") }, result.summary)
        XCTAssertTrue(lines.contains { $0.hasPrefix("encoding: ") && $0.contains("tokens") }, result.summary)
        XCTAssertTrue(lines.contains { $0.hasPrefix("note: skipped 1 binary file(s): ") && $0.hasSuffix("blob.bin") }, result.summary)
        XCTAssertTrue(lines.last?.hasPrefix("prepared \(out.path): bpe tokenizer, vocab 300, ") ?? false, result.summary)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("tokenizer.json"))) as? [String: Any])
        XCTAssertEqual((json["model"] as? [String: Any])?["type"] as? String, "BPE")

        let quiet = try LTEBinary.succeed(["data", "prepare", "--input", corpus.appendingPathComponent("a.txt").path,
                                           "--tokenizer", "byte", "--out", out.path, "--quiet"])
        XCTAssertEqual(quiet.stdout.split(separator: "\n").count, 1, quiet.summary)
    }

    func testBadFlagsFailWithOneErrorLine() throws {
        let dir = try makeTemporaryDirectory()
        let text = dir.appendingPathComponent("t.txt")
        try Data("hello there\n".utf8).write(to: text)
        let out = dir.appendingPathComponent("out").path
        try LTEBinary.fail(["data", "prepare", "--input", text.path, "--tokenizer", "char", "--vocab", "300", "--out", out], "only for the bpe tokenizer")
        try LTEBinary.fail(["data", "prepare", "--input", text.path, "--tokenizer", "bpe", "--vocab", "10", "--out", out], "between 256")
        // An unknown tokenizer that is no file either: one line listing the kinds.
        try LTEBinary.fail(["data", "prepare", "--input", text.path, "--tokenizer", "sentencepiece", "--out", out],
                           "unknown tokenizer kind 'sentencepiece'", "char, byte, bpe")
        try LTEBinary.fail(["data", "prepare", "--input", dir.appendingPathComponent("nope").path, "--tokenizer", "byte", "--out", out], "does not exist")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
