import Foundation
import LTEBase
@testable import LTECluster
import LTEModel
import LTENet
import LTENumerics
import LTEStore
import LTETraining
import XCTest

/// The second hash (issue 18): with `lte.frozen_weights` nf4 a worker holds W quantized only, and
/// checks its quantized frozen weights against the server's hash of its own, after quantizing the
/// weights it joined with and after taking each round's requantized tensors. Workers against a real
/// `ServerCore` and history, in process, with a link that can damage what the server sent.
final class FrozenHashWorkerTests: XCTestCase {
    private func nf4Server() throws -> ServerHarness {
        try ServerHarness(quorum: 1, roundTimeout: .seconds(60)) { $0.frozenWeights = .nf4 }
    }

    /// The worker's requests handed to the server; `damage` may change the answer before the worker sees it.
    private func link(_ h: ServerHarness, damage: @escaping (inout WireMessage) -> Void) -> WorkerCore.Exchange {
        { make in var reply = h.core.handle(make(), frameBytes: 1000); damage(&reply); return reply }
    }

    /// Honest rounds: the worker's hash equals the server's after joining and after every round, and
    /// the history records that hash for every round, root included, in round.json.
    func testWorkerServerAndHistoryAgreeOnTheFrozenHash() throws {
        let h = try nf4Server()
        let w = try worker("a", heads: [0, 1])
        try w.join(over: link(h))
        let joined = try XCTUnwrap(h.core.main.frozenHash)
        XCTAssertEqual(w.main?.frozenHash, joined)
        XCTAssertEqual(try h.history.show("0").round?.frozenWeights, RoundRecord.FrozenWeights(format: .nf4, sha256: joined))
        for round in 1...2 {
            XCTAssertEqual(try w.push(try w.trainRound(), over: link(h)), .merged(round: round))
            let served = try XCTUnwrap(h.core.main.frozenHash)
            XCTAssertEqual(w.main?.frozenHash, served, "round \(round)")
            XCTAssertEqual(try h.history.show("\(round)").round?.frozenWeights?.sha256, served, "round \(round)")
        }
        XCTAssertNotEqual(h.core.main.frozenHash, joined, "the merges moved W, so its quantized form must change")
        XCTAssertEqual(try h.history.fsck().frozenRounds, 3)
    }

    /// One flipped code in a frozen tensor of a round's answer: the worker stops with an error that
    /// names the round and both hashes, instead of training on other weights than the run's.
    func testCorruptedFrozenTensorInTheAnswerIsCaught() throws {
        let h = try nf4Server()
        let w = try worker("a", heads: [0, 1])
        try w.join(over: link(h))
        let damaging = link(h) { reply in
            guard case .roundResult(var r) = reply, let i = r.tensors.firstIndex(where: { $0.name.hasPrefix("frozen.") }) else { return }
            r.tensors[i].bytes[r.tensors[i].bytes.count - 1] ^= 0x11   // the last byte of codes: two values change
            reply = .roundResult(r)
        }
        do {
            _ = try w.push(try w.trainRound(), over: damaging)
            XCTFail("a damaged frozen tensor went unnoticed")
        } catch let e as LTEError {
            XCTAssertTrue(e.message.contains("after round 1 this worker's frozen nf4 weights hash"), e.message)
            XCTAssertTrue(e.message.contains("differs from the server's \(try XCTUnwrap(h.core.main.frozenHash).short)"), e.message)
            XCTAssertFalse(e.message.contains("\n"))
        }
    }

    /// A requantization that goes otherwise on the worker (here: the welcome's W changed in one
    /// value of a frozen tensor) is caught at the join, naming the round the weights are of.
    func testWorkerRequantizationThatDiffersIsCaughtAtTheJoin() throws {
        let h = try nf4Server()
        let entry = try XCTUnwrap(h.core.main.quantizedFrozen?.entries.first)
        let damaging = link(h) { reply in
            guard case .welcome(var m) = reply, let i = m.tensors.firstIndex(where: { $0.name == WireNames.main }) else { return }
            m.tensors[i].values[entry.offset] += 1   // far beyond the block's maximum: its scale and codes change
            reply = .welcome(m)
        }
        let w = try worker("a", heads: [0, 1])
        let served = try XCTUnwrap(h.core.main.frozenHash).short
        assertLTEError(try w.join(over: damaging), contains: "after quantizing the weights of round 0 this worker's frozen nf4 weights hash",
                       "differs from the server's \(served)")
        // A server that sends no hash for quantized frozen weights is refused too: nothing goes unchecked.
        let h2 = try nf4Server()
        let silent = link(h2) { reply in if case .welcome(var m) = reply { m.frozenHash = nil; reply = .welcome(m) } }
        assertLTEError(try worker("b", heads: [0, 1]).join(over: silent), contains: "the server sent no hash of the frozen nf4 weights")
    }
}
