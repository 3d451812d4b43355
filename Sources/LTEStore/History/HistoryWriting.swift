import Foundation
import LTEBase
import LTEModel

/// What `commitMerge` wrote.
public struct CommittedRound: Sendable, Equatable {
    public let round: Int
    public let commit: String
    /// `WeightsHash.sha256` of the weights after the round, as recorded: what workers check.
    public let weightsHash: WeightsDigest
    /// `WeightsHash.sha256(frozen:)` of the weights after the round, quantized in the run's
    /// `lte.frozen_weights`, as recorded; nil when they are float32.
    public let frozenHash: WeightsDigest?
    public let snapshot: Bool
}

extension MergeHistory {
    /// Longest worker name accepted (it becomes a branch name and a path in the history).
    public static let maxWorkerNameBytes = 64

    /// Whether `worker` can name a worker branch (`workers/<worker>`): 1–64 ASCII letters, digits, '.',
    /// '_' or '-', and a valid git reference. The server checks this before a push can reach a round,
    /// so a strange name is refused up front instead of failing the round's commit.
    public static func isValidWorkerName(_ worker: String) -> Bool {
        !worker.isEmpty && worker.utf8.count <= maxWorkerNameBytes
            && worker.utf8.allSatisfy({ $0 < 128 && (isalnum(Int32($0)) != 0 || "._-".utf8.contains($0)) })
            && GitRepository.isValidReferenceName("refs/heads/workers/\(worker)")
    }

    /// Records a worker's push: a commit on `refs/heads/workers/<worker>` whose tree holds
    /// `heads/<id>.safetensors` for each head pushed (`heads` maps head id to a safetensors file of
    /// its factors, PEFT names as `HeadFactors` writes them) and `push.json`. Its parent is the
    /// worker branch's previous tip, or `baseCommit` (the round the worker trained from) for its
    /// first push. Files are re-encoded canonically, so equal factors share one blob. Pushing the
    /// same thing twice returns the first commit. Returns the commit id.
    public func commitPush(worker: String, round: Int, baseCommit: String, heads: [Int: Data]) throws -> String {
        let name = "refs/heads/workers/\(worker)"
        guard Self.isValidWorkerName(worker) else {
            throw LTEError("history \(url.path): worker name \(worker.debugDescription) must be letters, digits, '.', '_' or '-'")
        }
        let base = try resolveRound(baseCommit).commit
        var files: [String: GitOID] = [:]
        for (id, data) in heads.sorted(by: { $0.key < $1.key }) {
            try checkHead(id)
            guard let layout = loraLayout else { throw LTEError("history \(url.path): this run has no adapters, so no heads to push") }
            let source = "push of worker \(worker) round \(round) head \(id)"
            let factors = try HeadFactors.decode(data, layout: layout, source: source)
            files[Paths.head(id)] = try repository.writeBlob(try HeadFactors.encode(factors.pointer, layout: layout))
        }
        let record = PushRecord(worker: worker, round: round, base: base.id.hex, heads: heads.keys.sorted())
        files["push.json"] = try repository.writeBlob(try HistoryJSON.encode(record))
        let tree = try repository.writeTree(files)
        let previous = try repository.referenceTarget(name)
        if let previous, try repository.readCommit(previous).tree == tree { return previous.hex }
        let message = "push: worker \(worker), round \(round), heads \(list(record.heads))\n\nBase: \(base.id.hex)\n"
        return try repository.commit(tree: tree, parents: [previous ?? base.id], message: message,
                                     updating: name, expected: previous).hex
    }

    /// Records a merged round on this line: a commit whose parents are the line's previous round and
    /// then `workerCommits` (the pushes merged; an octopus merge when there are several), holding
    /// `round.json`, every head's factors as of its last merge, the averaged replicated tensors and,
    /// with `snapshot`, the full weights (tagged `snapshot/round-N`).
    ///
    /// `weights` are the main weights after the merge, `ParameterLayout` order; their hash (and, with
    /// quantized frozen weights, the hash of those quantized) is recorded and returned. `round` must follow the line's last round. The heads merged are the
    /// heads in the pushes; `metadata.headOrder` (default ascending) is the order `LTEMerge.apply`
    /// summed them in, and each head's "previous" factors must have been its factors at its last
    /// merge on this line (nil before its first, and always under reset-B) — exactly what replay uses.
    /// Under `lte.outer nesterov`, `velocity` is the outer optimizer's m after the merge (laid out
    /// like the weights): its hash is recorded, and a snapshot stores it beside the weights.
    @discardableResult
    public func commitMerge(round: Int, workerCommits: [String], metadata: RoundMetadata,
                            weights: UnsafePointer<Float>, velocity: UnsafePointer<Float>? = nil, snapshot: Bool) throws -> CommittedRound {
        let outer = mergeParameters().outer != nil
        guard outer == (velocity != nil) else {
            throw LTEError("history \(url.path): round \(round): " + (outer ? "this run's outer optimizer needs its velocity recorded" : "a velocity given for a run without an outer optimizer"))
        }
        let previousID = try tip()
        let previous = try repository.readCommit(previousID)
        guard let last = try roundRecord(previous) else {
            throw LTEError("history \(url.path): the tip of \(branch) (\(previousID.short)) is not a round")
        }
        guard round == last.round + 1 else {
            throw LTEError("history \(url.path): round \(round) does not follow round \(last.round), the last on \(branch)")
        }
        var files = try repository.files(inTree: previous.tree).filter {
            ["config.json", "tokenizer.json", "history.json"].contains($0.key) || Paths.headID($0.key) != nil
        }
        var pushes: [RoundRecord.Push] = []
        var parents = [previousID]
        var source: [Int: String] = [:]
        for revision in workerCommits {
            guard let id = try repository.resolveCommit(revision) else {
                throw LTEError("history \(url.path): round \(round): worker commit \(revision.debugDescription) does not exist")
            }
            let commit = try repository.readCommit(id)
            guard let push = try pushRecord(commit) else {
                throw LTEError("history \(url.path): round \(round): commit \(id.short) is not a worker push")
            }
            guard !parents.contains(id) else { throw LTEError("history \(url.path): round \(round): push \(id.short) is listed twice") }
            let pushed = try repository.files(inTree: commit.tree)
            for head in push.heads {
                if let other = source[head] {
                    throw LTEError("history \(url.path): round \(round): head \(head) is in two pushes (\(other), \(id.short))")
                }
                source[head] = id.short
                files[Paths.head(head)] = pushed[Paths.head(head)]
            }
            parents.append(id)
            pushes.append(.init(worker: push.worker, commit: id.hex, round: push.round, heads: push.heads))
        }
        let order = metadata.headOrder ?? source.keys.sorted()
        guard order.sorted() == source.keys.sorted() else {
            throw LTEError("history \(url.path): round \(round): head order \(order) does not list exactly the heads pushed, \(source.keys.sorted())")
        }
        let hash = WeightsHash.sha256(params: weights, layout: parameterLayout)
        let frozen = frozenWeights(weights)
        let record = RoundRecord(round: round, heads: order, pushes: pushes, merge: mergeParameters(), losses: metadata.losses,
                                 tokens: metadata.tokens, learningRate: metadata.learningRate, bytes: metadata.bytes,
                                 timing: metadata.timing, notes: metadata.notes, weightsSHA256: hash, snapshot: snapshot,
                                 excluded: metadata.excluded?.isEmpty == false ? metadata.excluded : nil, frozenWeights: frozen,
                                 velocitySHA256: velocity.map(velocityHash))
        files["round.json"] = try repository.writeBlob(try HistoryJSON.encode(record))
        if snapshot, let velocity { files[Paths.velocity] = try repository.writeBlob(try TensorSlot.encode(velocitySlots, from: velocity)) }
        files[Paths.replicated] = try repository.writeBlob(try TensorSlot.encode(replicatedSlots, from: weights))
        if snapshot { files[Paths.weights] = try repository.writeBlob(try encodeWeights(weights)) }
        var message = "round \(round): heads \(list(order))"
        if let loss = record.meanLoss { message += String(format: ", mean loss %.4f", loss) }
        message += "\n\nWeights-SHA256: \(hash)\n"
        if let frozen { message += "Frozen-\(frozen.format.rawValue.uppercased())-SHA256: \(frozen.sha256)\n" }
        let id = try repository.commit(tree: try repository.writeTree(files), parents: parents, message: message,
                                       updating: reference, expected: previousID)
        if snapshot { try repository.createTag(snapshotTag(round: round), target: id, message: "round \(round) weights, sha256 \(hash)\n") }
        return CommittedRound(round: round, commit: id.hex, weightsHash: hash, frozenHash: frozen?.sha256, snapshot: snapshot)
    }

    func checkHead(_ id: Int) throws {
        guard (0..<manifest.totalHeads).contains(id) else {
            throw LTEError("history \(url.path): head \(id) is outside 0..<\(manifest.totalHeads)")
        }
    }

    func list(_ heads: [Int]) -> String { heads.isEmpty ? "none" : heads.map(String.init).joined(separator: ",") }
}
