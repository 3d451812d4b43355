import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEData

/// `lte data prepare` reads its inputs block by block; the shards must not depend on where blocks or
/// files end.
final class StreamingPreparationTests: XCTestCase {
    /// Text with multi-byte characters, contractions and whitespace runs for blocks to cut through.
    private func sampleText() throws -> [UInt8] {
        let shakespeare = try Data(contentsOf: try tinyShakespeareURL()).prefix(30_000)
        let extra = "\nnaïve café — ☃ 日本語 I'll we're they've  \t\n\n  ½ 123 'tis\u{A0}end\r\n"
        return Array(shakespeare) + Array(String(repeating: extra, count: 40).utf8)
    }

    private func files(in dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in [TokenDataset.trainFile, TokenDataset.valFile, TokenDataset.tokenizerFile] {
            out[name] = try Data(contentsOf: dir.appendingPathComponent(name))
        }
        return out
    }

    func testShardsDoNotDependOnBlockSizeOrFileSplits() throws {
        let dir = try makeTemporaryDirectory()
        let text = try sampleText()
        let whole = dir.appendingPathComponent("whole.txt")
        try Data(text).write(to: whole)
        // The same text in three files cut after line breaks (so no newline is inserted between them).
        let newlines = text.indices.filter { text[$0] == 0x0A }
        let cuts = [newlines[newlines.count / 3] + 1, newlines[2 * newlines.count / 3] + 1]
        let parts = [text[..<cuts[0]], text[cuts[0]..<cuts[1]], text[cuts[1]...]]
        let partsDir = dir.appendingPathComponent("parts")
        try FileManager.default.createDirectory(at: partsDir, withIntermediateDirectories: true)
        for (i, part) in parts.enumerated() { try Data(part).write(to: partsDir.appendingPathComponent("part\(i).txt")) }

        for kind in ["byte", "char", "bpe"] {
            var options = DataPreparation.Options(tokenizer: kind, vocabSize: kind == "bpe" ? 400 : nil)
            let reference = dir.appendingPathComponent("\(kind)-whole")
            let summary = try DataPreparation.prepare(inputs: [whole], options: options, out: reference)
            let expected = try files(in: reference)
            let dataset = try TokenDataset(directory: reference)
            XCTAssertEqual(dataset.tokenizer.decodeBytes(dataset.train.allTokens() + dataset.val.allTokens()), text, kind)
            for blockSize in [16, 17, 1000] {
                options.blockSize = blockSize
                let out = dir.appendingPathComponent("\(kind)-parts-\(blockSize)")
                let split = try DataPreparation.prepare(inputs: [partsDir], options: options, out: out)
                XCTAssertEqual(split.meta.trainTokens, summary.meta.trainTokens, "\(kind), blocks of \(blockSize)")
                XCTAssertEqual(try files(in: out), expected, "\(kind), blocks of \(blockSize)")
            }
        }
    }

    func testBPEValidationShardIsTheEncodingOfItsOwnText() throws {
        let dir = try makeTemporaryDirectory()
        let input = dir.appendingPathComponent("text.txt")
        try Data(try sampleText()).write(to: input)
        let out = dir.appendingPathComponent("bpe")
        let summary = try DataPreparation.prepare(inputs: [input], options: .init(tokenizer: "bpe", vocabSize: 500), out: out)
        let dataset = try TokenDataset(directory: out)
        let tokenizer = try XCTUnwrap(dataset.tokenizer as? BPETokenizer)
        let total = summary.meta.trainTokens + summary.meta.valTokens
        XCTAssertGreaterThanOrEqual(summary.meta.trainTokens, Int(Double(total) * 0.9))
        XCTAssertLessThan(summary.meta.trainTokens, Int(Double(total) * 0.9) + 20, "the split only moves to the next word start")
        let val = dataset.val.allTokens(), train = dataset.train.allTokens()
        XCTAssertEqual(tokenizer.encode(bytes: tokenizer.decodeBytes(val)), val)
        XCTAssertEqual(tokenizer.encode(bytes: tokenizer.decodeBytes(train)), train)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent(SplitShardWriter.wordStartsFile).path))
        XCTAssertEqual(dataset.meta.tokenizer, "bpe")
        XCTAssertEqual(dataset.vocabSize, 500)
    }

    func testDirectoriesAreWalkedInSortedOrderSkippingHiddenEmptyAndBinaryFiles() throws {
        let dir = try makeTemporaryDirectory()
        let corpus = dir.appendingPathComponent("corpus")
        let fm = FileManager.default
        for sub in ["b", ".git"] { try fm.createDirectory(at: corpus.appendingPathComponent(sub), withIntermediateDirectories: true) }
        try Data("second file\n".utf8).write(to: corpus.appendingPathComponent("b/inner.txt"))
        try Data("first file".utf8).write(to: corpus.appendingPathComponent("a.txt"))
        try Data("third file\n".utf8).write(to: corpus.appendingPathComponent("c.md"))
        try Data().write(to: corpus.appendingPathComponent("empty.txt"))
        try Data([0x89, 0x50, 0x4E, 0x47, 0x00, 0x01]).write(to: corpus.appendingPathComponent("image.png"))
        try Data("hidden\n".utf8).write(to: corpus.appendingPathComponent(".git/HEAD"))
        try Data("hidden too\n".utf8).write(to: corpus.appendingPathComponent(".notes"))
        let extra = dir.appendingPathComponent("extra.txt")
        try Data("last".utf8).write(to: extra)

        let out = dir.appendingPathComponent("data")
        var reports: [DataPreparation.Progress] = []
        let summary = try DataPreparation.prepare(inputs: [corpus, extra], options: .init(tokenizer: "byte", valFraction: 0.2),
                                                  out: out, progress: { reports.append($0) })
        let dataset = try TokenDataset(directory: out)
        let text = String(decoding: dataset.tokenizer.decodeBytes(dataset.train.allTokens() + dataset.val.allTokens()), as: UTF8.self)
        XCTAssertEqual(text, "first file\nsecond file\nthird file\nlast")
        XCTAssertEqual(summary.skippedBinaries.map(\.lastPathComponent), ["image.png"])
        XCTAssertEqual(summary.textBytes, text.utf8.count - 1)   // the inserted newline is not file content
        XCTAssertEqual(reports.last?.phase, "encoding")
        XCTAssertEqual(reports.last?.bytesRead, summary.textBytes)
        XCTAssertEqual(reports.last?.tokens, text.utf8.count)
        XCTAssertTrue(reports.last?.description.contains("MB/s") ?? false)
    }

    func testBadInputsAreReportedAndLeaveNothingBehind() throws {
        let dir = try makeTemporaryDirectory()
        let out = dir.appendingPathComponent("out")
        let text = dir.appendingPathComponent("text.txt")
        try Data("some text to split into words".utf8).write(to: text)
        let binaries = dir.appendingPathComponent("binaries")
        try FileManager.default.createDirectory(at: binaries, withIntermediateDirectories: true)
        try Data([0, 1, 2]).write(to: binaries.appendingPathComponent("blob"))
        assertLTEError(try DataPreparation.prepare(inputs: [binaries], options: .init(tokenizer: "byte"), out: out),
                       contains: binaries.path, "no non-empty text files")
        assertLTEError(try DataPreparation.prepare(inputs: [text], options: .init(tokenizer: "char", vocabSize: 300), out: out),
                       contains: "only for the bpe tokenizer")
        assertLTEError(try DataPreparation.prepare(inputs: [text], options: .init(tokenizer: "bpe", vocabSize: 100), out: out),
                       contains: "between 256")
        let invalid = dir.appendingPathComponent("latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: invalid)
        assertLTEError(try DataPreparation.prepare(inputs: [invalid], options: .init(tokenizer: "char"), out: out), contains: "not valid UTF-8")
        // Too short is only known at the end, after the shards were started: they are removed again.
        try Data("x".utf8).write(to: text)
        assertLTEError(try DataPreparation.prepare(inputs: [text], options: .init(tokenizer: "bpe", vocabSize: 256), out: out), contains: "too short")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written on error")
        // BPE takes any bytes, like the byte tokenizer.
        let summary = try DataPreparation.prepare(inputs: [invalid], options: .init(tokenizer: "bpe", vocabSize: 260), out: out)
        XCTAssertEqual(summary.meta.trainTokens + summary.meta.valTokens, try TokenDataset(directory: out).train.count + 1)
    }
}
