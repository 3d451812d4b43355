import Foundation
import LTEModel
import LTETraining
import XCTest
@testable import LTECluster

/// A worker started with --config refuses a server whose run differs in anything that decides its bits.
final class RunConfigFingerprintTests: XCTestCase {
    private let base = RunConfig(model: ModelConfig(vocabSize: 32, dim: 16, layers: 2, heads: 2, ffnDim: 24, contextLength: 8))

    func testLengthAndThreadsDoNotChangeTheFingerprint() {
        var other = base
        other.rounds = 12
        other.training.iterations = 120
        other.training.threads = 2
        XCTAssertEqual(other.fingerprint, base.fingerprint)
    }

    func testWhatDecidesTheBitsChangesIt() {
        var rank = base, heads = base, seed = base, vocab = base
        rank.lte.rank += 1
        heads.lte.heads += 1
        seed.training.seed += 1
        vocab.model.vocabSize += 1
        for changed in [rank, heads, seed, vocab] { XCTAssertNotEqual(changed.fingerprint, base.fingerprint) }
    }

    func testTheWelcomesConfigReadsBackAndABadOneIsAnError() throws {
        var sent = base
        sent.rounds = 3
        XCTAssertEqual(try RunConfig.fromServer(sent.encoded()), sent)
        XCTAssertThrowsError(try RunConfig.fromServer(Data(#"{"model": {}}"#.utf8)))
    }
}
