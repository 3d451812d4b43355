import Foundation
@testable import LTEData
import XCTest

final class SyntheticCorpusTests: XCTestCase {
    func testSameSeedSameTextDifferentSeedDifferentText() {
        let a = SyntheticCorpus.generate(seed: 1, bytes: 50_000)
        XCTAssertEqual(a, SyntheticCorpus.generate(seed: 1, bytes: 50_000))
        XCTAssertNotEqual(a, SyntheticCorpus.generate(seed: 2, bytes: 50_000))
        XCTAssertTrue(SyntheticCorpus.generate(seed: 1, bytes: 80_000).hasPrefix(a), "a longer corpus extends a shorter one")
    }

    func testExactSizeAndPlainASCII() {
        for size in [1, 100, 12_345] {
            let text = SyntheticCorpus.generate(seed: 3, bytes: size)
            XCTAssertEqual(text.utf8.count, size)
            XCTAssertTrue(text.utf8.allSatisfy { $0 == 10 || (32..<127).contains($0) })
        }
    }

    func testDefaultCorpusHasPlayStructureAndGrammar() throws {
        XCTAssertEqual(SyntheticCorpus.generate(seed: 1).utf8.count, SyntheticCorpus.defaultBytes)
        let text = SyntheticCorpus.generate(seed: 1, bytes: 200_000)
        let speeches = text.components(separatedBy: "\n\n").dropLast()
        XCTAssertGreaterThan(speeches.count, 1_000)
        for speech in speeches.prefix(2_000) {
            let lines = speech.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertTrue(lines[0].hasSuffix(":") && lines[0].dropLast().allSatisfy(\.isUppercase), "speaker line: \(lines[0])")
            XCTAssertTrue((2...4).contains(lines.count), "one to three lines of speech")
            for line in lines.dropFirst() {
                XCTAssertTrue(line.first!.isUppercase, "a line starts with a capital: \(line)")
                XCTAssertTrue(".!?".contains(line.last!), "a line ends a sentence: \(line)")
            }
        }
        // Agreement: third-person singular pronouns take -s, the others do not, and after do/does/did
        // every subject takes the base form; "an" before vowels.
        func occurrences(_ s: String) -> Int { text.components(separatedBy: s).count - 1 }
        for bare in ["he see ", "she love ", "he know "] {
            XCTAssertGreaterThan(occurrences(" " + bare), 0)
            XCTAssertEqual(occurrences(" " + bare), ["Does ", "does ", "Did ", "did "].map { occurrences($0 + bare) }.reduce(0, +),
                           "\"\(bare)\" only after does/did")
        }
        for wrong in [" they sees ", " we knows ", " I sees ", "Does he sees ", "Do they sees ", "Did she saw ", " a old ", " a eagle ", " an king "] {
            XCTAssertFalse(text.contains(wrong), "ungrammatical \"\(wrong)\"")
        }
        for right in [" he sees ", " they see ", "Does ", "Do ", "Did ", " an ", "Yes, ", "No, "] {
            XCTAssertTrue(text.contains(right), "missing \"\(right)\"")
        }
        let tokenizer = try CharTokenizer(corpus: text)
        XCTAssertLessThan(tokenizer.vocabSize, 65)
    }
}
