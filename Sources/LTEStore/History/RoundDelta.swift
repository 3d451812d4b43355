import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// What one round changed, in the low-rank form the server merged it in: the input of a PEFT export.
///
///     W_k = W_{k−1} + factor · Σ_terms sign · B A      on every wrapped layer,  factor = s / N
///     everything else (embeddings, norm gains, an unwrapped lm_head) = `replicated`
///
/// The terms are, for each head merged in the round in summation order, its factors (B, A) and,
/// under the reset-less rule, its factors at its previous merge (−B⁰, A⁰), when it had one.
public struct RoundDelta {
    public struct Term {
        public let head: Int
        /// Factors laid out by the history's `LoRALayout`.
        public let factors: FloatBuffer
        /// True for −B⁰A⁰, the factors at the head's previous merge.
        public let negated: Bool
    }

    public let round: Int
    public let commit: String
    /// The round this one was merged onto (first parent on its line): the base the delta applies to.
    public let baseRound: Int
    public let baseCommit: String
    public let layout: LoRALayout
    public let terms: [Term]
    /// s/N, in float32 as `LTEMerge.apply` computed it.
    public let factor: Float
    /// The averaged non-adapter tensors after the round, at their `ParameterLayout` offsets in a
    /// buffer of the model's full size (other entries zero).
    public let replicated: FloatBuffer
    public let replicatedSlots: [TensorSlot]
}

extension MergeHistory {
    /// The delta of the round `revision` names over the round before it on its line.
    public func roundDelta(_ revision: String) throws -> RoundDelta {
        let (commit, record) = try resolveRound(revision)
        let here = "history \(url.path): round \(record.round) (\(commit.id.short))"
        guard let layout = loraLayout else {
            throw LTEError("\(here): this run has no adapters (FedAvg), so its rounds have no low-rank delta to export")
        }
        guard let parentID = commit.parents.first, record.round > 0 else {
            throw LTEError("\(here) holds the initial weights; a round delta needs a round ≥ 1")
        }
        let parent = try repository.readCommit(parentID)
        guard let parentRecord = try roundRecord(parent) else {
            throw LTEError("\(here): its first parent \(parentID.short) is not a round")
        }
        guard record.merge.outer == nil else {
            throw LTEError("\(here): under lte.outer \(record.merge.outer!.rawValue) a round moves W by its outer step, which is not low-rank; export the round's full weights instead")
        }
        let files = try repository.files(inTree: commit.tree)
        let previous = try repository.files(inTree: parent.tree)
        func decode(_ blob: GitOID, _ source: String) throws -> FloatBuffer {
            try HeadFactors.decode(try repository.readBlob(blob), layout: layout, source: "\(here): \(source)")
        }
        var terms: [RoundDelta.Term] = []
        for h in record.heads {
            guard let current = files[Paths.head(h)] else { throw LTEError("\(here) merges head \(h) but has no \(Paths.head(h))") }
            terms.append(.init(head: h, factors: try decode(current, Paths.head(h)), negated: false))
            if record.merge.rule == .resetless, let old = previous[Paths.head(h)] {
                terms.append(.init(head: h, factors: try decode(old, "previous \(Paths.head(h))"), negated: true))
            }
        }
        guard let replicatedBlob = files[Paths.replicated] else { throw LTEError("\(here) has no \(Paths.replicated)") }
        let replicated = FloatBuffer(count: parameterLayout.count)
        try TensorSlot.decode(try repository.readBlob(replicatedBlob), slots: replicatedSlots, into: replicated.pointer,
                              source: "\(here): \(Paths.replicated)")
        let scale = Float(bitPattern: record.merge.scaleBits)
        return RoundDelta(round: record.round, commit: commit.id.hex, baseRound: parentRecord.round, baseCommit: parentID.hex,
                          layout: layout, terms: terms, factor: scale / Float(record.merge.totalHeads),
                          replicated: replicated, replicatedSlots: replicatedSlots)
    }

    /// The run's `tokenizer.json` as stored in the round `revision` names (nil if the run had none).
    public func tokenizerData(at revision: String) throws -> Data? {
        try repository.readFile("tokenizer.json", inCommit: try resolveCommit(revision))
    }
}
