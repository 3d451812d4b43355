import Foundation
import LTEModel
import LTENumerics
@testable import LTEStore
import LTETraining
import XCTest

/// A parameter server in miniature, for the history tests: a main Transformer and three LoRA heads
/// owned by two workers ("a": heads 0 and 1, "b": head 2). Each round the workers that take part
/// move their factors by a random step (standing in for local training), push them, and the server
/// merges the heads present exactly as the real one does (`LTEMerge.apply` in ascending head order,
/// Vᵢ = factors at the head's last merge, then `LTEMerge.average` of the replicas' replicated
/// tensors), commits the round, and remembers the weights so tests can compare replays bit for bit.
final class SimulatedServer {
    static let model = ModelConfig(vocabSize: 32, dim: 16, layers: 2, heads: 2, ffnDim: 24, contextLength: 8)
    static let workers: [String: [Int]] = ["a": [0, 1], "b": [2]]

    let lora: LoRAConfig
    let main: Transformer
    let layout: LoRALayout
    let heads: [LoRAHead]
    let history: MergeHistory
    let replicatedSpans: [(offset: Int, count: Int)]
    /// `lte.outer nesterov` (`outer:`): every merge of W goes through it, as on the real server.
    let outer: OuterOptimizer?
    var rng = SeededGenerator(seed: 7)
    /// Main weights after each round, by round number.
    var weightsAfter: [Int: [Float]] = [:]
    var committed: [Int: CommittedRound] = [:]
    /// The outer optimizer's velocity after each round (with `outer:`), by round number.
    var velocityAfter: [Int: [Float]] = [:]
    /// The round the workers train from.
    var base: String
    var round: Int

    static func loraConfig(rule: LoRAConfig.MergeRule, wrapLMHead: Bool, frozenWeights: QuantizedFormat = .f32, outer: Bool = false) -> LoRAConfig {
        var lora = LoRAConfig()
        lora.heads = 3
        lora.rank = 4
        lora.alpha = 7   // s = 1.75: not a power of two, so rounding differences would show
        lora.merge = rule
        lora.wrapLMHead = wrapLMHead
        lora.frozenWeights = frozenWeights
        if outer { lora.outer = .nesterov; lora.outerLearningRate = 0.7; lora.outerMomentum = 0.9 }
        return lora
    }

    /// A new run: fresh weights and heads, and a new history at `url`.
    init(at url: URL, rule: LoRAConfig.MergeRule = .resetless, wrapLMHead: Bool = false, frozenWeights: QuantizedFormat = .f32,
         outer: Bool = false) throws {
        let lora = Self.loraConfig(rule: rule, wrapLMHead: wrapLMHead, frozenWeights: frozenWeights, outer: outer)
        let main = try Transformer(config: Self.model)
        main.initialize(seed: 1)
        let layout = LoRALayout(model: Self.model, layout: main.layout, rank: lora.rank, wrapLMHead: wrapLMHead)
        self.lora = lora
        self.main = main
        self.layout = layout
        heads = (0..<lora.heads).map { i in
            let h = LoRAHead(layout: layout, scale: lora.scale)
            h.initialize(seed: 1, head: i, aInit: .official)
            return h
        }
        let frozen = layout.wrappedTensorNames
        replicatedSpans = main.layout.tensors.filter { !frozen.contains($0.name) }.map { ($0.offset, $0.count) }
        self.outer = OuterOptimizer(lora, parameterCount: main.params.count, layout: layout)
        let initial = try TensorSlot.encode(TensorSlot.weights(main.layout), from: main.params.pointer)
        history = try MergeHistory.create(at: url, config: Data(#"{"lte":{"heads":3}}"#.utf8), tokenizer: Data(#"{"type":"byte"}"#.utf8),
                                          initialWeights: initial, modelConfig: Self.model, lora: lora)
        weightsAfter[0] = main.params.array
        base = try history.resolve("main")
        round = 0
    }

    /// A server restarted on `history` (any line), from what `resume()` gives back.
    init(resuming history: MergeHistory) throws {
        let state = try history.resume()
        let lora = history.manifest.lora!
        let layout = history.loraLayout!
        self.lora = lora
        self.layout = layout
        main = try Transformer(config: Self.model)
        main.params.copy(from: state.weights)
        heads = (0..<lora.heads).map { i in
            let h = LoRAHead(layout: layout, scale: lora.scale)
            h.initialize(seed: 1, head: i, aInit: .official)
            if let latest = state.latest[i] { h.factors.copy(from: latest) }
            if let merged = state.merged[i], lora.merge == .resetless { h.setMerged(from: merged.pointer) }
            return h
        }
        replicatedSpans = history.replicatedSlots.map { ($0.offset, $0.count) }
        outer = OuterOptimizer(lora, parameterCount: main.params.count, layout: layout)
        if let outer, let v = state.velocity { outer.setVelocity(from: v.pointer) }
        self.history = history
        round = state.head.round
        base = state.head.commit
        weightsAfter[round] = main.params.array
        rng = SeededGenerator(seed: 99)
    }

    /// One round: the workers in `merged` and `late` train and push (heads in `frozen` keep their
    /// factors), and the round merges only the pushes of `merged`.
    @discardableResult
    func runRound(merged: [String], late: [String] = [], frozen: Set<Int> = [], snapshot: Bool) throws -> CommittedRound {
        round += 1
        var pushes: [String: String] = [:]
        for w in merged + late {
            var files: [Int: Data] = [:]
            for h in Self.workers[w]! {
                if !frozen.contains(h) { rng.perturb(heads[h].factors, by: 0.05) }
                files[h] = try HeadFactors.encode(heads[h].factors.pointer, layout: layout)
            }
            pushes[w] = try history.commitPush(worker: w, round: round, baseCommit: base, heads: files)
        }
        let present = merged.flatMap { Self.workers[$0]! }.sorted()
        let replicas = present.map { _ -> FloatBuffer in
            let replica = main.params.clone()
            for (o, n) in replicatedSpans { for i in o..<(o + n) { replica[i] += 0.01 * rng.nextNormal() } }
            return replica
        }
        let contributions = present.map { h in
            LTEMerge.Contribution(factors: heads[h].factors,
                                  previous: lora.merge == .resetless && heads[h].hasCorrection ? heads[h].merged : nil)
        }
        if let outer {
            outer.merge(into: main.params) { LTEMerge.apply(to: $0, layout: layout, heads: contributions, scale: lora.scale, totalHeads: lora.heads) }
        } else {
            LTEMerge.apply(to: main.params, layout: layout, heads: contributions, scale: lora.scale, totalHeads: lora.heads)
        }
        for h in present { heads[h].didMerge(rule: lora.merge) }
        LTEMerge.average(spans: replicatedSpans, replicas: replicas, into: main.params)

        let metadata = RoundMetadata(losses: present.map { .init(head: $0, loss: 3 - 0.1 * Float(round) + 0.01 * Float($0)) },
                                     tokens: round * 3 * 64, learningRate: 1e-3, bytes: 4096,
                                     timing: .init(started: 1.7e9 + Double(round), train: 1.5, wait: 0.25, merge: 0.01))
        let c = try history.commitMerge(round: round, workerCommits: merged.map { pushes[$0]! }, metadata: metadata,
                                        weights: main.params.pointer, velocity: outer.map { UnsafePointer($0.velocity.pointer) }, snapshot: snapshot)
        base = c.commit
        committed[round] = c
        weightsAfter[round] = main.params.array
        if let outer { velocityAfter[round] = outer.velocity.array }
        return c
    }

    /// Pushes without merging (a round the server never closed: it crashed, say).
    @discardableResult
    func pushOnly(_ worker: String) throws -> String {
        var files: [Int: Data] = [:]
        for h in Self.workers[worker]! {
            rng.perturb(heads[h].factors, by: 0.05)
            files[h] = try HeadFactors.encode(heads[h].factors.pointer, layout: layout)
        }
        return try history.commitPush(worker: worker, round: round + 1, baseCommit: base, heads: files)
    }

    /// The schedule the replay tests use: subsets, a late head, an unchanged head, snapshots every 2.
    static func standardRun(at url: URL, rule: LoRAConfig.MergeRule = .resetless, wrapLMHead: Bool = false,
                            frozenWeights: QuantizedFormat = .f32, outer: Bool = false) throws -> SimulatedServer {
        let s = try SimulatedServer(at: url, rule: rule, wrapLMHead: wrapLMHead, frozenWeights: frozenWeights, outer: outer)
        try s.runRound(merged: ["a", "b"], snapshot: false)              // 1: every head
        try s.runRound(merged: ["b"], late: ["a"], snapshot: true)        // 2: a pushes late, only head 2 merges
        try s.runRound(merged: ["b", "a"], snapshot: false)               // 3: a pushes again and joins
        try s.runRound(merged: ["a"], snapshot: true)                     // 4: head 2 absent
        try s.runRound(merged: ["a", "b"], snapshot: false)               // 5
        try s.runRound(merged: ["a", "b"], frozen: [2], snapshot: true)   // 6: head 2 pushes unchanged factors
        try s.runRound(merged: ["a", "b"], snapshot: false)               // 7
        return s
    }
}

extension SeededGenerator {
    mutating func perturb(_ buffer: FloatBuffer, by std: Float) {
        for i in 0..<buffer.count { buffer[i] += std * nextNormal() }
    }
}

/// Bits of a buffer, for exact comparison (NaN-safe, −0 ≠ +0).
func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }
func bits(_ buffer: FloatBuffer) -> [UInt32] { bits(buffer.array) }
