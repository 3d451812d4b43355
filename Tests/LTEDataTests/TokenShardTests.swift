import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEData

final class TokenShardTests: XCTestCase {
    func testUInt16ShardLayoutAndReadBack() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("train.bin")
        let tokens: [Int32] = [0, 1, 64, 7, 33, 64, 0]
        try TokenShard.write(tokens, vocabSize: 65, to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(bytes.count, 16 + 2 * tokens.count)
        XCTAssertEqual(Array(bytes[0..<16]), Array("LTETOKEN".utf8) + [1, 0, 0, 0, 2, 0, 0, 0])
        XCTAssertEqual(Array(bytes[16..<22]), [0, 0, 1, 0, 64, 0])

        let shard = try TokenShard(contentsOf: url, vocabSize: 65)
        XCTAssertEqual(shard.count, tokens.count)
        XCTAssertEqual(shard.bytesPerToken, 2)
        XCTAssertEqual((0..<tokens.count).map { shard.token(at: $0) }, tokens)
        XCTAssertEqual(shard.allTokens(), tokens)
        var window = [Int32](repeating: -1, count: 4)
        window.withUnsafeMutableBufferPointer { shard.copyTokens(from: 2, count: 3, into: $0.baseAddress!) }
        XCTAssertEqual(window, [64, 7, 33, -1])
    }

    func testLargeVocabularyUsesFourBytesPerToken() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("big.bin")
        XCTAssertEqual(TokenShard.bytesPerToken(vocabSize: 65_536), 2)
        XCTAssertEqual(TokenShard.bytesPerToken(vocabSize: 65_537), 4)
        let tokens: [Int32] = [65_536, 0, 69_999, 65_535, 12]
        try TokenShard.write(tokens, vocabSize: 70_000, to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(bytes.count, 16 + 4 * tokens.count)
        XCTAssertEqual(Array(bytes[12..<20]), [4, 0, 0, 0, 0, 0, 1, 0])
        let shard = try TokenShard(contentsOf: url, vocabSize: 70_000)
        XCTAssertEqual(shard.bytesPerToken, 4)
        XCTAssertEqual(shard.allTokens(), tokens)
        XCTAssertEqual(shard.token(at: 2), 69_999)
    }

    func testStreamingAppendsEqualOneShotWrite() throws {
        let dir = try makeTemporaryDirectory()
        let tokens = (0..<150_000).map { Int32(($0 &* 7919) % 1000) }
        let whole = dir.appendingPathComponent("whole.bin"), pieces = dir.appendingPathComponent("pieces.bin")
        try TokenShard.write(tokens, vocabSize: 1000, to: whole)
        let writer = try TokenShardWriter(url: pieces, vocabSize: 1000)
        for start in stride(from: 0, to: tokens.count, by: 40_000) {
            try writer.append(Array(tokens[start..<min(start + 40_000, tokens.count)]))
        }
        XCTAssertEqual(writer.count, tokens.count)
        try writer.close()
        XCTAssertEqual(try Data(contentsOf: whole), try Data(contentsOf: pieces))
        XCTAssertEqual(try TokenShard(contentsOf: pieces, vocabSize: 1000).allTokens(), tokens)
    }

    func testEmptyShardIsValid() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("empty.bin")
        try TokenShard.write([], vocabSize: 10, to: url)
        XCTAssertEqual(try TokenShard(contentsOf: url, vocabSize: 10).count, 0)
    }

    func testWriterRejectsIDsOutsideTheVocabulary() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("bad.bin")
        let writer = try TokenShardWriter(url: url, vocabSize: 10)
        try writer.append([1, 2])
        assertLTEError(try writer.append([3, 10]), contains: url.path, "token 10 at index 3", "vocabulary of 10")
        assertLTEError(try writer.append([-1]), contains: "token -1 at index 2")
        try writer.close()
        XCTAssertEqual(try TokenShard(contentsOf: url, vocabSize: 10).allTokens(), [1, 2])
        assertLTEError(try writer.append([1]), contains: "closed")
        assertLTEError(try TokenShardWriter(url: url, vocabSize: 0), contains: "vocabulary size 0")
    }

    func testReaderRejectsEveryKindOfBadFile() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("shard.bin")
        let good = Array("LTETOKEN".utf8) + [1, 0, 0, 0, 2, 0, 0, 0] + [5, 0, 9, 0]
        func check(_ bytes: [UInt8], vocab: Int = 65, _ problem: String, file: StaticString = #filePath, line: UInt = #line) throws {
            try Data(bytes).write(to: url)
            assertLTEError(try TokenShard(contentsOf: url, vocabSize: vocab), contains: url.path, problem, file: file, line: line)
        }
        try Data(good).write(to: url)
        XCTAssertEqual(try TokenShard(contentsOf: url, vocabSize: 65).allTokens(), [5, 9])

        assertLTEError(try TokenShard(contentsOf: dir.appendingPathComponent("none.bin"), vocabSize: 65), contains: "none.bin", "does not exist")
        try check(Array(good.prefix(10)), "too short")
        try check(Array("NOTTOKEN".utf8) + Array(good[8...]), "bad magic")
        try check(Array(good[0..<8]) + [2, 0, 0, 0] + Array(good[12...]), "version 2")
        try check(Array(good[0..<12]) + [3, 0, 0, 0] + Array(good[16...]), "3 bytes per token")
        try check(good + [7], "not a multiple of 2")
        try check(good, vocab: 9, "token 9 at index 1")
        try check(Array(good[0..<12]) + [4, 0, 0, 0] + [1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], "token 4294967295 at index 1")
    }

    /// Workers read shards through a memory map, not a copy: the file shows up in the process's
    /// mappings while a `TokenShard` is alive (Linux only: it reads /proc/self/maps).
    func testShardIsMemoryMapped() throws {
        guard FileManager.default.fileExists(atPath: "/proc/self/maps") else { throw XCTSkip("no /proc/self/maps here") }
        let url = try makeTemporaryDirectory().appendingPathComponent("mapped-\(UUID().uuidString).bin")
        try TokenShard.write((0..<100_000).map { Int32($0 % 300) }, vocabSize: 300, to: url)
        let shard = try TokenShard(contentsOf: url, vocabSize: 300)
        // Read to the end: /proc files report size 0, and a one-shot read of a large map gets cut short.
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/maps"))
        let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        try handle.close()
        XCTAssertTrue(maps.contains(url.lastPathComponent), "token shard is not memory-mapped")
        XCTAssertEqual(shard.token(at: 99_999), 99_999 % 300)
    }
}
