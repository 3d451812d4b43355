import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETraining

/// What a replay rebuilt.
public struct ReplayResult: Sendable, Equatable {
    public let round: Int
    public let commit: String
    /// The recorded hash, which the rebuilt weights matched.
    public let weightsHash: WeightsDigest
    /// The recorded hash of the frozen weights quantized (`lte.frozen_weights`), which the rebuilt
    /// weights quantized matched; nil when the round records none (float32 frozen weights).
    public let frozenWeights: RoundRecord.FrozenWeights?
    /// The snapshot round replay started from.
    public let startRound: Int
    public let roundsApplied: Int
}

extension MergeHistory {
    /// Rebuilds the weights after the round `revision` names into `weights` (`ParameterLayout`
    /// order): loads the nearest snapshot at or before it on its first-parent line, re-runs every
    /// later round's merge exactly as the server did (`LTEMerge.apply` over the recorded heads, in
    /// the recorded order, with the recorded scale; then the recorded average of the replicated
    /// tensors), and checks the result against the round's recorded hash and, with quantized frozen
    /// weights, their quantized form against the round's frozen-weights hash.
    @discardableResult
    public func replay(to revision: String, into weights: FloatBuffer) throws -> ReplayResult {
        try replayState(to: revision, into: weights).result
    }

    /// `replay(to:into:)`, also returning the outer optimizer's velocity after the round (laid out
    /// like the weights; nil under the plain merge): what a server resuming the line needs besides.
    func replayState(to revision: String, into weights: FloatBuffer) throws -> (result: ReplayResult, velocity: FloatBuffer?) {
        guard weights.count == parameterLayout.count else {
            throw LTEError("replay: buffer holds \(weights.count) floats, the model has \(parameterLayout.count)")
        }
        let target = try resolveRound(revision)
        let chain = try repository.firstParentHistory(from: target.commit.id) {
            try repository.blobID(at: Paths.weights, inTree: $0.tree) != nil
        }
        var replayer = Replayer(history: self, weights: weights)
        let start = try replayer.run(chain.reversed(), checkEveryRound: false, checkSnapshots: false)
        return (ReplayResult(round: target.record.round, commit: target.commit.id.hex, weightsHash: target.record.weightsSHA256,
                             frozenWeights: target.record.frozenWeights, startRound: start, roundsApplied: chain.count - 1),
                replayer.outer?.velocity)
    }

    /// The weights after the round `revision` names, in a new buffer.
    public func replay(to revision: String) throws -> (weights: FloatBuffer, result: ReplayResult) {
        let weights = FloatBuffer(count: parameterLayout.count)
        let result = try replay(to: revision, into: weights)
        return (weights, result)
    }
}

/// Carries the weights along a line of rounds, oldest first. Decoded head factors are cached by
/// blob id: a head's "previous" factors are the blob its last merge brought in, already decoded.
struct Replayer {
    let history: MergeHistory
    /// Owned here, so the raw pointers the decoders and the hash take from it stay valid.
    let weights: FloatBuffer
    /// `lte.outer nesterov`: the outer step every round goes through, and its velocity m, carried
    /// along the line like the weights (from a snapshot's `outer/velocity.safetensors`, or zero at
    /// the root) and checked against each round's recorded hash as the weights are.
    let outer: OuterOptimizer?
    private var cache: [GitOID: FloatBuffer] = [:]
    private(set) var roundsChecked = 0
    /// Rounds whose frozen-weights hash was checked (those that record one).
    private(set) var frozenChecked = 0

    init(history: MergeHistory, weights: FloatBuffer) {
        self.history = history
        self.weights = weights
        outer = history.makeOuterOptimizer()
    }

    private var repo: GitRepository { history.repository }
    private var where_: String { "history \(history.url.path)" }

    /// Loads the snapshot in `chain[0]` and applies every later round. Checks the hash after the
    /// last round, or after every round; with `checkSnapshots`, also checks the full weights stored
    /// in later snapshot commits. Returns the round it started from.
    mutating func run(_ chain: [GitCommitInfo], checkEveryRound: Bool, checkSnapshots: Bool) throws -> Int {
        guard let first = chain.first, let firstRecord = try history.roundRecord(first) else {
            throw LTEError("\(where_): nothing to replay")
        }
        guard let snapshot = try repo.blobID(at: MergeHistory.Paths.weights, inTree: first.tree) else {
            throw LTEError("\(where_): no snapshot at or before round \(firstRecord.round) to start replay from")
        }
        try loadSnapshot(snapshot, into: weights.pointer, record: firstRecord, commit: first)
        try checkFrozen(firstRecord, commit: first)
        if let outer { try loadVelocity(into: outer.velocity, record: firstRecord, commit: first) }
        roundsChecked += 1
        var previous = (files: try repo.files(inTree: first.tree), record: firstRecord)
        for (i, commit) in chain.enumerated().dropFirst() {
            guard let record = try history.roundRecord(commit) else {
                throw LTEError("\(where_): commit \(commit.id.short) on the line is not a round")
            }
            guard record.round == previous.record.round + 1 else {
                throw LTEError("\(where_): round \(record.round) (\(commit.id.short)) follows round \(previous.record.round)")
            }
            let files = try repo.files(inTree: commit.tree)
            try apply(record, commit: commit, files: files, previous: previous.files)
            if checkEveryRound || i == chain.count - 1 { try checkHash(record, commit: commit); roundsChecked += 1 }
            if checkSnapshots, let s = files[MergeHistory.Paths.weights] {
                let stored = FloatBuffer(count: history.parameterLayout.count)
                try loadSnapshot(s, into: stored.pointer, record: record, commit: commit)
                if outer != nil { try loadVelocity(into: FloatBuffer(count: history.parameterLayout.count), record: record, commit: commit) }
            }
            previous = (files, record)
        }
        return firstRecord.round
    }

    /// One round: W += (s/N) Σ (BA − B⁰A⁰) over the recorded heads, then the replicated tensors.
    private mutating func apply(_ record: RoundRecord, commit: GitCommitInfo, files: [String: GitOID], previous: [String: GitOID]) throws {
        let r = record.round
        let merge = record.merge
        guard merge == history.mergeParameters() else {
            throw LTEError("\(where_): round \(r) (\(commit.id.short)) records merge parameters that differ from history.json")
        }
        if let layout = history.loraLayout, !record.heads.isEmpty {
            var contributions: [LTEMerge.Contribution] = []
            for h in record.heads {
                guard let current = files[MergeHistory.Paths.head(h)] else {
                    throw LTEError("\(where_): round \(r) (\(commit.id.short)) merges head \(h) but has no heads/\(h).safetensors")
                }
                let f = try factors(current, layout: layout, source: "round \(r) heads/\(h).safetensors")
                var p: FloatBuffer?
                if merge.rule == .resetless, let old = previous[MergeHistory.Paths.head(h)] {
                    p = try factors(old, layout: layout, source: "round \(r - 1) heads/\(h).safetensors")
                }
                contributions.append(.init(factors: f, previous: p))
            }
            let scale = Float(bitPattern: merge.scaleBits)
            if let outer {
                outer.merge(into: weights) { delta in
                    LTEMerge.apply(to: delta, layout: layout, heads: contributions, scale: scale, totalHeads: merge.totalHeads)
                }
            } else {
                LTEMerge.apply(to: weights, layout: layout, heads: contributions, scale: scale, totalHeads: merge.totalHeads)
            }
        }
        guard let replicated = files[MergeHistory.Paths.replicated] else {
            throw LTEError("\(where_): round \(r) (\(commit.id.short)) has no replicated.safetensors")
        }
        try TensorSlot.decode(try repo.readBlob(replicated), slots: history.replicatedSlots, into: weights.pointer,
                              source: "\(where_): round \(r) replicated.safetensors")
        let live = Set(files.filter { MergeHistory.Paths.headID($0.key) != nil }.values)
        cache = cache.filter { live.contains($0.key) }
    }

    private mutating func factors(_ blob: GitOID, layout: LoRALayout, source: String) throws -> FloatBuffer {
        if let f = cache[blob] { return f }
        let f = try HeadFactors.decode(try repo.readBlob(blob), layout: layout, source: "\(where_): \(source)")
        cache[blob] = f
        return f
    }

    private func loadSnapshot(_ blob: GitOID, into buffer: UnsafeMutablePointer<Float>, record: RoundRecord, commit: GitCommitInfo) throws {
        try TensorSlot.decode(try repo.readBlob(blob), slots: TensorSlot.weights(history.parameterLayout), into: buffer,
                              source: "\(where_): round \(record.round) weights/model.safetensors")
        let hash = WeightsHash.sha256(params: buffer, layout: history.parameterLayout)
        guard hash == record.weightsSHA256 else {
            throw LTEError("\(where_): round \(record.round) (\(commit.id.short)): snapshot weights hash \(hash.hex.prefix(12))… "
                           + "differs from the recorded \(record.weightsSHA256.hex.prefix(12))…")
        }
    }

    /// The outer optimizer's velocity at a snapshot commit, into `buffer` (laid out like the
    /// weights), checked against the round's recorded hash. The root's is zero and not stored.
    private func loadVelocity(into buffer: FloatBuffer, record: RoundRecord, commit: GitCommitInfo) throws {
        if let blob = try repo.blobID(at: MergeHistory.Paths.velocity, inTree: commit.tree) {
            try TensorSlot.decode(try repo.readBlob(blob), slots: history.velocitySlots, into: buffer.pointer,
                                  source: "\(where_): round \(record.round) \(MergeHistory.Paths.velocity)")
        } else if record.round == 0 {
            for slot in history.velocitySlots { (buffer.pointer + slot.offset).update(repeating: 0, count: slot.count) }
        } else {
            throw LTEError("\(where_): round \(record.round) (\(commit.id.short)) is a snapshot without \(MergeHistory.Paths.velocity), "
                           + "which its outer optimizer needs")
        }
        try checkVelocity(buffer, record: record, commit: commit, what: "stored velocity")
    }

    private func checkVelocity(_ velocity: FloatBuffer, record: RoundRecord, commit: GitCommitInfo, what: String) throws {
        guard let recorded = record.velocitySHA256 else {
            throw LTEError("\(where_): round \(record.round) (\(commit.id.short)) records no outer_velocity_sha256, which its outer optimizer needs")
        }
        let hash = history.velocityHash(velocity.pointer)
        guard hash == recorded else {
            throw LTEError("\(where_): round \(record.round) (\(commit.id.short)): \(what) of the outer optimizer has hash \(hash.hex.prefix(12))…, "
                           + "but the round recorded \(recorded.hex.prefix(12))…")
        }
    }

    private mutating func checkHash(_ record: RoundRecord, commit: GitCommitInfo) throws {
        let hash = WeightsHash.sha256(params: weights.pointer, layout: history.parameterLayout)
        guard hash == record.weightsSHA256 else {
            throw LTEError("\(where_): replay of round \(record.round) (\(commit.id.short)) gives weights hash \(hash.hex.prefix(12))…, "
                           + "but the round recorded \(record.weightsSHA256.hex.prefix(12))…")
        }
        if let outer { try checkVelocity(outer.velocity, record: record, commit: commit, what: "the replayed velocity") }
        try checkFrozen(record, commit: commit)
    }

    /// The second hash: the weights quantized as the run's workers hold them, against the round's
    /// record (rounds of float32 runs, and of histories older than the field, record none).
    private mutating func checkFrozen(_ record: RoundRecord, commit: GitCommitInfo) throws {
        guard let recorded = record.frozenWeights else { return }
        let format = history.manifest.lora?.frozenWeights ?? .f32
        guard recorded.format == format else {
            throw LTEError("\(where_): round \(record.round) (\(commit.id.short)) records frozen weights in \(recorded.format.rawValue), "
                           + "history.json says lte.frozen_weights \(format.rawValue)")
        }
        let rebuilt = history.frozenWeights(weights.pointer)
        guard let rebuilt, rebuilt.sha256 == recorded.sha256 else {
            throw LTEError("\(where_): replay of round \(record.round) (\(commit.id.short)) gives frozen \(format.rawValue) weights hash "
                           + "\(rebuilt.map { "\($0.sha256.hex.prefix(12))…" } ?? "none"), but the round recorded \(recorded.sha256.hex.prefix(12))…")
        }
        frozenChecked += 1
    }
}
