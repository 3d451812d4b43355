import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// The second hash (issue 18): a history of a run whose frozen weights are quantized records, per
/// round, the SHA-256 of those quantized bytes; replay and fsck quantize the rebuilt weights and
/// check it; a float32 run's rounds carry no such field, as before.
final class HistoryFrozenHashTests: XCTestCase {
    private func run(_ format: QuantizedFormat) throws -> SimulatedServer {
        try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"), frozenWeights: format)
    }

    /// The recorded hash is SHA-256 over every wrapped tensor's quantized bytes in layout order:
    /// checked against `sha256sum` of those bytes concatenated, for every round and the root.
    func testEveryRoundRecordsTheHashOfItsWeightsQuantized() throws {
        let s = try run(.nf4)
        let dir = try makeTemporaryDirectory()
        for round in 0...7 {
            let record = try XCTUnwrap(try s.history.show("\(round)").round)
            let frozen = try XCTUnwrap(record.frozenWeights, "round \(round) records no frozen-weights hash")
            XCTAssertEqual(frozen.format, .nf4)
            var bytes: [UInt8] = []
            let weights = try XCTUnwrap(s.weightsAfter[round])
            for t in s.main.layout.tensors where s.layout.wrappedTensorNames.contains(t.name) {
                bytes += QuantizedTensor(quantizing: Array(weights[t.offset..<(t.offset + t.count)]), format: .nf4).bytes
            }
            let file = dir.appendingPathComponent("round-\(round).bin")
            try Data(bytes).write(to: file)
            let sum = try runProgram("/usr/bin/sha256sum", [file.path]).out.prefix(64)
            XCTAssertEqual(frozen.sha256.hex, String(sum), "round \(round)")
        }
        XCTAssertTrue(try s.history.show("3").message.contains("Frozen-NF4-SHA256: "))
    }

    func testReplayAndFsckCheckBothHashes() throws {
        let s = try run(.int8)
        for round in [2, 5, 7] {
            let (weights, result) = try s.history.replay(to: "\(round)")
            XCTAssertEqual(bits(weights), bits(s.weightsAfter[round]!))
            XCTAssertEqual(result.frozenWeights?.format, .int8)
            XCTAssertEqual(result.frozenWeights, try s.history.show("\(round)").round?.frozenWeights)
        }
        let report = try s.history.fsck()
        XCTAssertEqual(report.rounds, 8)
        XCTAssertEqual(report.frozenRounds, 8)
    }

    func testFloat32RunsRecordNoFrozenHash() throws {
        let s = try run(.f32)
        let blob = try XCTUnwrap(GitOID(hex: try XCTUnwrap(try s.history.show("4").files["round.json"])))
        let json = String(decoding: try s.history.repository.readBlob(blob), as: UTF8.self)
        XCTAssertFalse(json.contains("frozen"), json)
        XCTAssertNil(try s.history.replay(to: "4").result.frozenWeights)
        XCTAssertEqual(try s.history.fsck().frozenRounds, 0)
    }

    /// A round.json whose frozen-weights hash (or format) was changed after the fact: fsck and replay
    /// say which round and what was recorded; the weights hash alone would not have noticed.
    func testTamperedFrozenHashIsReportedWithItsRound() throws {
        let s = try run(.nf4)
        let recorded = try XCTUnwrap(s.committed[7]?.frozenHash)
        try rewriteTipRound(s.history) { $0.frozenWeights?.sha256 = WeightsDigest(bytes: recorded.bytes.map { $0 ^ 1 })! }
        assertLTEError(try s.history.fsck(), contains: "fsck:", "replay of round 7", "gives frozen nf4 weights hash \(recorded.hex.prefix(12))",
                       "but the round recorded")
        assertLTEError(try s.history.replay(to: "main"), contains: "replay of round 7", "frozen nf4 weights hash")
        XCTAssertNoThrow(try s.history.replay(to: "6"), "rounds before the tampered one still replay")

        let other = try run(.nf4)
        try rewriteTipRound(other.history) { $0.frozenWeights?.format = .int8 }
        assertLTEError(try other.history.fsck(), contains: "round 7", "records frozen weights in int8, history.json says lte.frozen_weights nf4")
    }

    /// Replaces the tip of main by a commit whose round.json is `edit`ed (same parents, same other files).
    private func rewriteTipRound(_ history: MergeHistory, _ edit: (inout RoundRecord) -> Void) throws {
        let repo = history.repository
        let tip = try XCTUnwrap(try repo.referenceTarget("refs/heads/main"))
        let commit = try repo.readCommit(tip)
        var files = try repo.files(inTree: commit.tree)
        var record = try XCTUnwrap(try history.roundRecord(commit))
        edit(&record)
        files["round.json"] = try repo.writeBlob(try HistoryJSON.encode(record))
        _ = try repo.commit(tree: try repo.writeTree(files), parents: commit.parents, message: commit.message,
                            updating: "refs/heads/main", expected: tip)
    }
}
