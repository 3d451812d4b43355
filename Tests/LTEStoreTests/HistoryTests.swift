import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// The history as git sees it, as readers and a restarted server use it, and its guard rails.
final class HistoryTests: XCTestCase {
    private func standardRun() throws -> SimulatedServer {
        try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
    }

    func testGitLogAndFsckUnderstandTheHistory() throws {
        let s = try standardRun()
        let url = s.history.url
        let graph = try git(url, "log", "--oneline", "--graph", "main")
        XCTAssertTrue(graph.contains("round 7: heads 0,1,2"), graph)
        XCTAssertTrue(graph.contains("round 0: initial weights"), graph)
        XCTAssertTrue(graph.contains("push: worker a, round 2"), "the late push is in the graph:\n\(graph)")
        XCTAssertTrue(graph.contains("|\\"), "merges fan in:\n\(graph)")
        // Parents: the previous round, then one commit per worker merged (octopus with three).
        let parents = try git(url, "log", "--first-parent", "--format=%s|%P", "main").split(separator: "\n").map {
            let fields = $0.split(separator: "|", omittingEmptySubsequences: false)
            return (fields[0], fields[1].split(separator: " ").count)
        }
        XCTAssertEqual(parents.map(\.1), [3, 3, 3, 2, 3, 2, 3, 0], "\(parents)")
        XCTAssertEqual(try git(url, "rev-parse", "main^1").trimmingCharacters(in: .whitespacesAndNewlines), s.committed[6]!.commit)
        _ = try git(url, "fsck", "--strict", "--no-dangling")
        // The files are plain files git can print.
        let round = try git(url, "show", "main:round.json")
        XCTAssertTrue(round.contains("\"weights_sha256\" : \"\(s.committed[7]!.weightsHash)\""), round)
        XCTAssertEqual(try git(url, "tag", "--list").split(separator: "\n"), ["snapshot/round-0", "snapshot/round-2", "snapshot/round-4", "snapshot/round-6"])
        XCTAssertEqual(try git(url, "cat-file", "-t", "snapshot/round-4").trimmingCharacters(in: .whitespacesAndNewlines), "tag")
        let tree = try git(url, "ls-tree", "-r", "--name-only", "snapshot/round-4")
        XCTAssertEqual(tree.split(separator: "\n"), ["config.json", "heads/0.safetensors", "heads/1.safetensors", "heads/2.safetensors",
                                                     "history.json", "replicated.safetensors", "round.json", "tokenizer.json",
                                                     "weights/model.safetensors"])
        XCTAssertFalse(try git(url, "ls-tree", "-r", "--name-only", "main").contains("weights/"), "round 7 is not a snapshot")
    }

    func testBlobsAreSharedNotDuplicated() throws {
        let s = try standardRun()
        let h = s.history
        func blob(_ rev: String, _ path: String) throws -> String? { try h.show(rev).files[path] }
        // Head 2 missed round 4: its factors are carried, same blob.
        XCTAssertEqual(try blob("4", "heads/2.safetensors"), try blob("3", "heads/2.safetensors"))
        // Head 2 pushed unchanged factors in round 6: same bytes, same blob as round 5.
        XCTAssertEqual(try blob("6", "heads/2.safetensors"), try blob("5", "heads/2.safetensors"))
        XCTAssertNotEqual(try blob("7", "heads/2.safetensors"), try blob("6", "heads/2.safetensors"))
        // A merge reuses the pushed blob; config and tokenizer are the root's blobs.
        let round6 = try h.show("6").round!
        let pushB = round6.pushes.first { $0.worker == "b" }!
        XCTAssertEqual(try blob(pushB.commit, "heads/2.safetensors"), try blob("6", "heads/2.safetensors"))
        for file in ["config.json", "tokenizer.json", "history.json"] { XCTAssertEqual(try blob("7", file), try blob("0", file)) }
        // Head files hold the factors exactly; what is pushed is what is read.
        let data = try h.repository.readBlob(GitOID(hex: try blob("7", "heads/1.safetensors")!)!)
        XCTAssertEqual(bits(try HeadFactors.decode(data, layout: s.layout, source: "t")), bits(s.heads[1].factors))
        // Pushing the same factors with metadata and in a different file still gives one blob.
        let again = SafeTensorsFile(tensors: try SafeTensorsFile(bytes: data, source: "t").tensors, metadata: ["x": "y"])
        let id = try h.commitPush(worker: "c", round: 8, baseCommit: "main", heads: [1: try again.encoded()])
        XCTAssertEqual(try blob(id, "heads/1.safetensors"), try blob("7", "heads/1.safetensors"))
        XCTAssertEqual(try h.commitPush(worker: "c", round: 8, baseCommit: "main", heads: [1: try again.encoded()]), id, "a repeated push is one commit")
    }

    func testRevisionsResolve() throws {
        let s = try standardRun()
        let h = s.history
        let c3 = s.committed[3]!.commit
        XCTAssertEqual(try h.resolve(c3), c3)
        XCTAssertEqual(try h.resolve(String(c3.prefix(7))), c3)
        XCTAssertEqual(try h.resolve("3"), c3)
        XCTAssertEqual(try h.resolve("snapshot/round-4"), s.committed[4]!.commit)
        XCTAssertEqual(try h.resolve("main"), s.committed[7]!.commit)
        XCTAssertEqual(try h.resolve("main~4"), c3)
        XCTAssertEqual(try h.show("0").round?.round, 0)
        assertLTEError(try h.resolve("no-such-rev"), contains: "unknown revision \"no-such-rev\"", "round number")
        assertLTEError(try h.resolve("99"), contains: "unknown revision \"99\"")
        assertLTEError(try h.resolve(""), contains: "unknown revision")
        assertLTEError(try h.resolve("--help"), contains: "unknown revision")
    }

    func testLogAndShow() throws {
        let s = try standardRun()
        let log = try s.history.log()
        XCTAssertEqual(log.map(\.round), [7, 6, 5, 4, 3, 2, 1, 0])
        XCTAssertEqual(log.map(\.commit), (0...7).reversed().map { $0 == 0 ? try! s.history.resolve("0") : s.committed[$0]!.commit })
        XCTAssertEqual(log[3].heads, [0, 1], "round 4 merged only worker a's heads")
        XCTAssertEqual(log[5].heads, [2])
        XCTAssertEqual(log.filter(\.snapshot).map(\.round), [6, 4, 2, 0])
        XCTAssertEqual(log[0].meanLoss!, (2.3 + 2.31 + 2.32) / 3, accuracy: 1e-6)
        XCTAssertNil(log[7].meanLoss)
        XCTAssertEqual(try s.history.log(limit: 2).map(\.round), [7, 6])
        let show = try s.history.show("2")
        XCTAssertEqual(show.round?.pushes.map(\.worker), ["b"])
        XCTAssertEqual(show.round?.timing.wait, 0.25)
        XCTAssertEqual(show.round?.merge.totalHeads, 3)
        XCTAssertEqual(show.round.map { Float(bitPattern: $0.merge.scaleBits) }, 1.75)
        let push = try s.history.show("workers/a~5")
        XCTAssertEqual(push.push?.round, 2, "the late push of round 2")
        XCTAssertEqual(push.push?.base, s.committed[1]!.commit)
    }

    func testOpeningWithAnotherModelConfigFails() throws {
        let s = try standardRun()
        var other = SimulatedServer.model
        other.dim = 32
        assertLTEError(try MergeHistory.open(at: s.history.url, modelConfig: other), contains: "different model config",
                             "hidden_size: 16 in the history, 32 given")
        XCTAssertNoThrow(try MergeHistory.open(at: s.history.url, modelConfig: SimulatedServer.model))
        assertLTEError(try MergeHistory.open(at: s.history.url, modelConfig: SimulatedServer.model, branch: "nope"), contains: "no branch \"nope\"")
        assertLTEError(try MergeHistory.create(at: s.history.url, config: Data(), tokenizer: nil, initialWeights: Data(),
                                                     modelConfig: SimulatedServer.model, lora: nil), contains: "already exists")
    }

    func testCreateChecksItsInputsBeforeMakingAnything() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("history.git")
        assertLTEError(try MergeHistory.create(at: url, config: Data("{}".utf8), tokenizer: nil, initialWeights: Data([1, 2, 3]),
                                                     modelConfig: SimulatedServer.model, lora: nil), contains: "initial weights", "too short")
        var bigger = SimulatedServer.model
        bigger.dim = 32
        let other = try Transformer(config: bigger)
        let weights = try TensorSlot.encode(TensorSlot.weights(other.layout), from: other.params.pointer)
        assertLTEError(try MergeHistory.create(at: url, config: Data("{}".utf8), tokenizer: nil, initialWeights: weights,
                                                     modelConfig: SimulatedServer.model, lora: nil), contains: "initial weights", "has shape [32, 32], expected [32, 16]")
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "nothing was created")
    }

    func testResumeRebuildsTheServerAndItCarriesOnBitExactly() throws {
        let s = try standardRun()
        let pending = try s.pushOnly("a")   // the server died after this push, before merging round 8
        let history = try MergeHistory.open(at: s.history.url, modelConfig: SimulatedServer.model)
        let head = try history.head()
        XCTAssertEqual(head.round, 7)
        XCTAssertEqual(head.commit, s.committed[7]!.commit)
        XCTAssertEqual(head.mergedHeads, [0, 1, 2])
        let state = try history.resume()
        XCTAssertEqual(bits(state.weights), bits(s.weightsAfter[7]!))
        XCTAssertEqual(state.nextRound, 8)
        XCTAssertEqual(state.pending, [PendingPush(worker: "a", commit: pending, round: 8, heads: [0, 1])])
        for h in 0..<3 { XCTAssertEqual(bits(state.merged[h]!), bits(s.heads[h].merged), "V of head \(h)") }
        for h in 0..<3 { XCTAssertEqual(bits(state.latest[h]!), bits(s.heads[h].factors), "newest factors of head \(h)") }

        // A restarted server carries on; its rounds replay as exactly as the first server's.
        let resumed = try SimulatedServer(resuming: history)
        try resumed.runRound(merged: ["a", "b"], snapshot: false)
        try resumed.runRound(merged: ["b"], snapshot: true)
        for r in [8, 9] { XCTAssertEqual(bits(try history.replay(to: "\(r)").weights), bits(resumed.weightsAfter[r]!), "round \(r)") }
    }

    func testBranchContinuesFromAPastRound() throws {
        let s = try standardRun()
        XCTAssertEqual(try s.history.branch(from: "3", name: "lr-sweep"), s.committed[3]!.commit)
        assertLTEError(try s.history.branch(from: "3", name: "lr-sweep"), contains: "refs/heads/lr-sweep")
        assertLTEError(try s.history.branch(from: "3", name: "bad..name"), contains: "not a usable branch name")
        let line = try MergeHistory.open(at: s.history.url, modelConfig: SimulatedServer.model, branch: "lr-sweep")
        let fork = try SimulatedServer(resuming: line)
        XCTAssertEqual(bits(fork.main.params), bits(s.weightsAfter[3]!))
        try fork.runRound(merged: ["a", "b"], snapshot: true)
        XCTAssertEqual(try line.log().map(\.round), [4, 3, 2, 1, 0])
        XCTAssertEqual(bits(try line.replay(to: "4").weights), bits(fork.weightsAfter[4]!))
        XCTAssertEqual(bits(try s.history.replay(to: "4").weights), bits(s.weightsAfter[4]!), "main's round 4 is untouched")
        XCTAssertEqual(try line.resolve("snapshot/lr-sweep/round-4"), fork.committed[4]!.commit)
        XCTAssertEqual(try s.history.head().round, 7)
    }

    func testBadPushesAndMergesAreRefused() throws {
        let s = try standardRun()
        let h = s.history
        let good = try HeadFactors.encode(s.heads[0].factors.pointer, layout: s.layout)
        assertLTEError(try h.commitPush(worker: "x/y", round: 8, baseCommit: "main", heads: [0: good]), contains: "worker name \"x/y\"")
        assertLTEError(try h.commitPush(worker: "x", round: 8, baseCommit: "main", heads: [3: good]), contains: "head 3 is outside 0..<3")
        assertLTEError(try h.commitPush(worker: "x", round: 8, baseCommit: "nope", heads: [0: good]), contains: "unknown revision \"nope\"")
        let wrong = try HeadFactors.encode(s.heads[0].factors.pointer,
                                           layout: LoRALayout(model: SimulatedServer.model, layout: s.main.layout, rank: 2, wrapLMHead: false))
        assertLTEError(try h.commitPush(worker: "x", round: 8, baseCommit: "main", heads: [0: wrong]), contains: "head 0", "has shape [2, 16], expected [4, 16]")
        let p1 = try h.commitPush(worker: "x", round: 8, baseCommit: "main", heads: [0: good])
        let p2 = try h.commitPush(worker: "y", round: 8, baseCommit: "main", heads: [0: good])
        let w = s.main.params.pointer
        assertLTEError(try h.commitMerge(round: 9, workerCommits: [p1], metadata: .init(), weights: w, snapshot: false),
                             contains: "round 9 does not follow round 7")
        assertLTEError(try h.commitMerge(round: 8, workerCommits: [p1, p2], metadata: .init(), weights: w, snapshot: false),
                             contains: "head 0 is in two pushes")
        assertLTEError(try h.commitMerge(round: 8, workerCommits: [s.committed[7]!.commit], metadata: .init(), weights: w, snapshot: false),
                             contains: "is not a worker push")
        assertLTEError(try h.commitMerge(round: 8, workerCommits: [p1], metadata: .init(headOrder: [0, 1]), weights: w, snapshot: false),
                             contains: "head order [0, 1] does not list exactly the heads pushed, [0]")
        XCTAssertEqual(try h.head().round, 7, "nothing was committed")
    }
}
