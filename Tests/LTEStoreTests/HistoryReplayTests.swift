import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// Replay rebuilds, bit for bit, the weights a server held after each round.
final class HistoryReplayTests: XCTestCase {
    override func tearDown() {
        Parallel.threads = 1
        super.tearDown()
    }

    private func assertReplaysEveryRound(_ s: SimulatedServer, file: StaticString = #filePath, line: UInt = #line) throws {
        for (round, expected) in s.weightsAfter.sorted(by: { $0.key < $1.key }) {
            let (weights, result) = try s.history.replay(to: "\(round)")
            XCTAssertEqual(result.round, round, file: file, line: line)
            XCTAssertEqual(bits(weights), bits(expected), "round \(round) differs", file: file, line: line)
            let hash = expected.withUnsafeBufferPointer { WeightsHash.sha256(params: $0.baseAddress!, layout: s.main.layout) }
            XCTAssertEqual(result.weightsHash, hash, "round \(round)", file: file, line: line)
            XCTAssertEqual(result.startRound, round - round % 2, "starts from the nearest snapshot (every 2 rounds)", file: file, line: line)
            XCTAssertEqual(result.roundsApplied, round % 2, file: file, line: line)
        }
    }

    func testReplayIsBitExactForEveryRound() throws {
        let s = try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
        XCTAssertEqual(s.weightsAfter.count, 8)
        try assertReplaysEveryRound(s)
        // The same round by its commit id, short id and (snapshot rounds) tag.
        let c3 = s.committed[3]!.commit
        XCTAssertEqual(bits(try s.history.replay(to: c3).weights), bits(s.weightsAfter[3]!))
        XCTAssertEqual(bits(try s.history.replay(to: String(c3.prefix(8))).weights), bits(s.weightsAfter[3]!))
        XCTAssertEqual(bits(try s.history.replay(to: "snapshot/round-4").weights), bits(s.weightsAfter[4]!))
        XCTAssertEqual(bits(try s.history.replay(to: "main").weights), bits(s.weightsAfter[7]!))
        // Rounds 3 and 7 are not snapshots; the weights change every round.
        XCTAssertNotEqual(bits(s.weightsAfter[6]!), bits(s.weightsAfter[7]!))
    }

    func testReplayGivesTheSameBitsOnOneAndTwoThreads() throws {
        let s = try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
        Parallel.threads = 1
        let one = try s.history.replay(to: "7").weights
        Parallel.threads = 2
        let two = try s.history.replay(to: "7").weights
        XCTAssertEqual(bits(one), bits(two))
        XCTAssertEqual(bits(two), bits(s.weightsAfter[7]!))
    }

    /// A server that merged with two threads is replayed with one, and the other way round.
    func testServerThreadsDoNotMatterEither() throws {
        Parallel.threads = 2
        let s = try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
        Parallel.threads = 1
        try assertReplaysEveryRound(s)
    }

    func testResetBRuleAndWrappedLMHeadReplayBitExactly() throws {
        let s = try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"),
                                                rule: .resetB, wrapLMHead: true)
        XCTAssertFalse(s.history.replicatedSlots.contains { $0.name == "lm_head.weight" })
        XCTAssertEqual(try s.history.show("3").round?.merge.rule, .resetB)
        try assertReplaysEveryRound(s)
    }

    func testReplayChecksTheRecordedHash() throws {
        let s = try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
        // A server bug: it commits round 8 without having merged head 2's push into W.
        s.main.params[s.main.layout.blocks[0].wqkv] += 1
        try s.history.commitMerge(round: 8, workerCommits: [try s.pushOnly("b")], metadata: RoundMetadata(),
                                  weights: s.main.params.pointer, snapshot: false)
        assertLTEError(try s.history.replay(to: "8"), contains: "replay of round 8", "but the round recorded")
        XCTAssertEqual(bits(try s.history.replay(to: "7").weights), bits(s.weightsAfter[7]!))
    }

    func testReplayRefusesWorkerPushesAndWrongBuffers() throws {
        let s = try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
        assertLTEError(try s.history.replay(to: "workers/a"), contains: "is a worker push, not a round")
        assertLTEError(try s.history.replay(to: "1", into: FloatBuffer(count: 3)), contains: "buffer holds 3 floats")
    }

    /// FedAvg: no adapters, so every tensor is replicated and each round records the average.
    func testRunWithoutAdaptersReplaysItsAverages() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("history.git")
        let model = try Transformer(config: SimulatedServer.model)
        model.initialize(seed: 5)
        let history = try MergeHistory.create(at: url, config: Data("{}".utf8), tokenizer: nil,
                                              initialWeights: try TensorSlot.encode(TensorSlot.weights(model.layout), from: model.params.pointer),
                                              modelConfig: SimulatedServer.model, lora: nil, totalHeads: 2)
        XCTAssertEqual(history.replicatedSlots.count, model.layout.tensors.count)
        var rng = SeededGenerator(seed: 11)
        var after: [[Float]] = [model.params.array]
        for round in 1...3 {
            let pushes = try ["a", "b"].map { try history.commitPush(worker: $0, round: round, baseCommit: "main", heads: [:]) }
            rng.perturb(model.params, by: 0.01)
            try history.commitMerge(round: round, workerCommits: pushes, metadata: RoundMetadata(), weights: model.params.pointer, snapshot: false)
            after.append(model.params.array)
        }
        XCTAssertEqual(try history.show("2").round?.merge.rule, .average)
        for round in 0...3 { XCTAssertEqual(bits(try history.replay(to: "\(round)").weights), bits(after[round]), "round \(round)") }
        XCTAssertEqual(try history.fsck().rounds, 4)
    }

    func testWeightsHashIsSHA256OfTheLittleEndianTensorBytes() throws {
        let dir = try makeTemporaryDirectory()
        let model = try Transformer(config: SimulatedServer.model)
        model.initialize(seed: 3)
        let raw = dir.appendingPathComponent("weights.bin")
        try model.params.bytes().write(to: raw)
        let r = try runProgram("/usr/bin/sha256sum", [raw.path])
        XCTAssertEqual(WeightsHash.sha256(params: model.params.pointer, layout: model.layout).hex, String(r.out.prefix(64)))
    }
}
