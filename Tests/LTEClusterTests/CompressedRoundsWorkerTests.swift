import Foundation
import LTEBase
@testable import LTECluster
import LTEData
import LTEModel
import LTENet
import LTENumerics
import LTETraining
import XCTest

/// `lte.push_format` and `lte.overlap` on `WorkerCore`s against a real `ServerCore`, in process.
final class CompressedRoundsWorkerTests: XCTestCase {
    /// Per format: the server merges, keeps as Vᵢ and sends back exactly the dequantized values of
    /// what was pushed; the workers hold the server's bits and their heads train on from their own
    /// float32 factors; and after two rounds W − W₀ = (s/N) Σ BᵢAᵢ over the latest dequantized factors.
    func testQuantizedPushesMergeTheirDequantizedValues() throws {
        for format in [QuantizedFormat.bf16, .int8, .nf4] {
            let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60)) { $0.pushFormat = format }
            let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
            let link = link(h)
            for w in [a, b] { try w.join(over: link) }
            for round in 1...2 {
                let trained = try [a, b].map { try $0.trainRound() }
                let own = [a, b].map { $0.headFactors[0].array }
                XCTAssertEqual(try pushTogether([(a, h), (b, h)], trained: trained), [.merged(round: round), .merged(round: round)])
                for (i, w) in [a, b].enumerated() {
                    let dequantized = QuantizedTensor(quantizing: own[i], format: format, blockSize: format.pushedBlockSize).values
                    XCTAssertNotEqual(dequantized, own[i], "\(format) should round")
                    XCTAssertEqual(h.core.main.lastMerged[i]?.array, dequantized, "\(format): the server merged other values than it was sent")
                    XCTAssertEqual(w.headFactors[0].array, own[i], "\(format): the head lost its own float32 factors")
                    XCTAssertEqual(w.main!.model.params.array, h.core.main.model.params.array, "\(format): \(w.id) differs from the server")
                    XCTAssertEqual(w.main!.lastMerged[i]?.array, dequantized)
                }
            }
            // W − W₀ = (s/N) Σᵢ BᵢAᵢ over the latest merged (dequantized) factors, up to rounding.
            let lora = h.descriptor.lte
            let initial = try MainWeights(model: ServerHarness.model, lora: lora, totalHeads: 2, seed: h.descriptor.training.seed)
            let expected = FloatBuffer(initial.model.params.array)
            LTEMerge.apply(to: expected, layout: initial.layout!, heads: (0..<2).map { .init(factors: h.core.main.lastMerged[$0]!, previous: nil) },
                           scale: lora.scale, totalHeads: 2)
            let got = h.core.main.model.params.array, want = expected.array
            for s in initial.layout!.sites {
                for j in s.weight..<(s.weight + s.inFeatures * s.outFeatures) {
                    XCTAssertEqual(got[j], want[j], accuracy: 1e-5 + 1e-4 * abs(want[j]), "\(format): W − W₀ is not (s/N) Σ BA at \(s.site)")
                }
            }
        }
    }

    /// The server sends the pushed bytes back as they came: a round result's factors are the push's,
    /// and a pusher's own heads are left out of its answer (it merges the bytes it pushed).
    func testTheAnswerCarriesThePushedBytes() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60)) { $0.pushFormat = .nf4 }
        var sent: [String: WireTensor] = [:]
        let lock = NSLock()
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        let recording: WorkerCore.Exchange = { make in
            let m = make()
            if case .push(let p) = m { lock.lock(); for t in p.tensors where t.name.hasPrefix("factors.") { sent[t.name] = t }; lock.unlock() }
            let reply = h.core.handle(m, frameBytes: 1000)
            if case .roundResult(let r) = reply, case .push(let p) = m {
                for own in p.headIds { XCTAssertFalse(r.tensors.has("factors.\(own)"), "head \(own)'s factors sent back to its own worker") }
                for t in r.tensors where t.name.hasPrefix("factors.") {
                    lock.lock(); let pushed = sent[t.name]; lock.unlock()
                    XCTAssertEqual(t, pushed, "\(t.name) came back as other bytes than were pushed")
                    XCTAssertEqual(t.encoding.rawValue, 3)
                }
            }
            return reply
        }
        for w in [a, b] { try w.join(over: recording) }
        let pushes = try [a, b].map { w in let t = try w.trainRound(); return Background { try w.push(t, over: recording) } }
        XCTAssertEqual(try pushes.map { try $0.value() }, [.merged(round: 1), .merged(round: 1)])
        XCTAssertEqual(sent.count, 2)
    }

    /// int8 travels Huffman-coded (wire version 7). A push whose coded bytes do not decode to the
    /// tensor's int8 bytes — a count that is not the tensor's, bytes cut short, the plain int8 bytes
    /// of version 6 — is refused with a line naming the tensor, and the round merges the honest head.
    func testUndecodableInt8PushIsRefused() throws {
        for damage in ["count", "truncated", "plain"] {
            let h = try ServerHarness(quorum: 1, roundTimeout: .milliseconds(300)) { $0.pushFormat = .int8 }
            func asInt8(_ push: PushMessage) -> PushMessage {
                var p = push
                let base = h.core.main.packReplicated(h.core.main.model.params.pointer)
                p.tensors = p.tensors.map { t in
                    t.name.hasPrefix("factors.")
                        ? WireTensor(name: t.name, pushed: QuantizedTensor(quantizing: t.values, format: .int8, blockSize: QuantizedFormat.int8.pushedBlockSize))
                        : WireTensor(name: t.name, replicated: FloatBuffer(t.values), base: base, format: .int8)
                }
                return p
            }
            var bad = asInt8(h.honestPush(worker: "b", heads: [1]))
            XCTAssertEqual(bad.tensors[0].name, "factors.1")
            switch damage {
            case "count": bad.tensors[0].bytes[0] ^= 1
            case "truncated": bad.tensors[0].bytes.removeLast(100)
            default:
                let values = h.honestPush(worker: "b", heads: [1]).tensors[0].values
                bad.tensors[0] = WireTensor(name: "factors.1", shape: [values.count], encoding: WireTensor.Encoding(rawValue: 2),
                                            bytes: QuantizedTensor(quantizing: values, format: .int8).bytes)
            }
            let attack = h.send(.push(bad))
            guard case .roundResult(let result)? = h.send(.push(asInt8(h.honestPush(worker: "a", heads: [0])))).wait(seconds: 30) else {
                return XCTFail("\(damage): the honest round did not close: \(h.log)")
            }
            XCTAssertEqual(result.headsMerged, [0], damage)
            guard case .error(let e)? = attack.wait(seconds: 10) else { return XCTFail("\(damage): the push was not refused") }
            XCTAssertTrue(e.message.contains("factors.1"), "\(damage): \(e.message)")
            XCTAssertTrue(e.message.contains(damage == "plain" ? "encoded as 2" : "Huffman-coded int8"), "\(damage): \(e.message)")
        }
    }

    /// With `lte.overlap` (and int8 pushes): a push returns at once, the worker trains the next round
    /// on the weights it has, and applies the merge when `collect`ed at the end of those steps.
    /// Whole runs of two workers end on the server's bits, and on the in-process trainer's.
    func testOverlappedWorkersMatchTheInProcessRun() throws {
        let threads = Parallel.threads
        Parallel.threads = 1
        BLASThreads.set(1)
        defer { Parallel.threads = threads; BLASThreads.set(threads) }
        let rounds = 3
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60), rounds: rounds) { $0.pushFormat = .int8; $0.overlap = true }
        let a = try worker("a", heads: [0]), b = try worker("b", heads: [1])
        let link = link(h)

        // Step by step: round 1's push is sent, round 2 trains on the initial weights, then merge 1 lands.
        for w in [a, b] { try w.join(over: link) }
        let first = try [a, b].map { try $0.push($0.trainRound(), over: link) }
        XCTAssertEqual(first, [.sent(round: 1), .sent(round: 1)])
        XCTAssertEqual(a.round, 0, "a push in flight must not move the weights")
        // Until merge 1 is applied each head counts what it pushed (the dequantized int8 values) at s/N.
        let aHead = try XCTUnwrap(a.session?.replicas[0].head)
        let pushedValues = try XCTUnwrap(aHead.pushed).array
        XCTAssertEqual(pushedValues, PushedFactors(quantizing: aHead.factors, format: .int8).values.array)
        let second = try [a, b].map { try $0.trainRound() }
        XCTAssertEqual(try [a, b].map { try $0.collect(over: link) }, [.merged(round: 1), .merged(round: 1)])
        XCTAssertEqual(a.weightsHash, h.core.main.weightsHash)
        XCTAssertNil(aHead.pushed, "the merge applied, W holds the head's share")
        XCTAssertEqual(aHead.merged.array, pushedValues)
        // Rounds 2 (overlapped) and 3 (the last: waited for) as the loop runs them.
        let rest = [(a, second[0]), (b, second[1])].map { w, trained in
            Background { () -> WeightsDigest in
                XCTAssertEqual(try w.push(trained, over: link), .sent(round: 2))
                let last = try w.trainRound()
                XCTAssertEqual(try w.collect(over: link), .merged(round: 2))
                XCTAssertEqual(try w.push(last, over: link), .merged(round: 3))
                return try XCTUnwrap(w.weightsHash)
            }
        }
        let hashes = try rest.map { try $0.value() }
        XCTAssertEqual(hashes, [h.core.main.weightsHash, h.core.main.weightsHash])
        XCTAssertEqual(try h.history.head().weightsHash, h.core.main.weightsHash)

        // The in-process run with the same settings: same seeds, same shards, same bits.
        var training = h.descriptor.training
        training.decayIterations = training.decayIterations ?? training.iterations
        training.iterations = rounds * h.descriptor.mergeEvery
        let vocab = ServerHarness.model.vocabSize
        let url = try makeTemporaryDirectory().appendingPathComponent("train.bin")
        try TokenShard.write((0..<8192).map { Int32(($0 * 7 + $0 / 5) % vocab) }, vocabSize: vocab, to: url)
        let shard = try TokenShard(contentsOf: url, vocabSize: vocab)
        let sampler = { (i: Int) in try BatchSampler.forHead(i, of: 2, train: shard, batchSize: training.batchSize,
                                                              contextLength: ServerHarness.model.contextLength, seed: training.seed) }
        let local = try ReplicaTrainer(mode: .lte, model: ServerHarness.model, config: training, lora: h.descriptor.lte,
                                       makeSource: sampler, validation: { try! sampler(0) })
        for i in 0..<training.iterations { _ = local.trainStep(iteration: i) }
        XCTAssertEqual(local.merges, rounds)
        XCTAssertEqual(local.main.model.params.array, h.core.main.model.params.array, "overlapped in-process and distributed runs differ")
        XCTAssertEqual(local.replicas[0].head?.factors.array, a.headFactors[0].array)
        XCTAssertEqual(local.replicas[1].head?.factors.array, b.headFactors[0].array)
    }
}
