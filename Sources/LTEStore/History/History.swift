import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETraining

/// The merge history of a run (DESIGN.md §5): a bare git repository, `RUN/history.git`, that
/// `git log` and `git fsck` understand, from which any round's weights can be rebuilt bit for bit.
///
///     main (a line)        root ── round 1 ── round 2 ── …      merge commits, first parent = the
///                                 /  |        /                 previous round, then the pushes
///     workers/<w>        push ─ push   push ─ push              one commit per push
///
/// Root tree: `config.json`, `tokenizer.json`, `history.json` (`HistoryManifest`), `round.json`
/// (round 0), `weights/model.safetensors`. A round's tree: the same first three (same blobs),
/// `round.json` (`RoundRecord`), `heads/<id>.safetensors` for every head merged so far (its factors
/// at its last merge: the blob of the push it came in, never a copy), `replicated.safetensors` (the
/// averaged non-adapter tensors, which are not low-rank), and, every so often, the full weights with
/// a `snapshot/round-N` tag, so replay starts from the nearest one.
///
/// Writes are durable when they return (libgit2 fsyncs objects and refs, see `GitLibrary`) and a
/// line only moves from the commit it was last seen at, so two servers cannot both append to it.
/// Not thread-safe: use from one task.
public final class MergeHistory {
    public let repository: GitRepository
    public let url: URL
    /// The line this instance appends rounds to and reads by default: `refs/heads/<branch>`.
    public let branch: String
    public let manifest: HistoryManifest
    public let parameterLayout: ParameterLayout
    /// nil for a run without adapters.
    public let loraLayout: LoRALayout?
    /// The tensors a round averages rather than merges: everything the adapters do not wrap.
    public let replicatedSlots: [TensorSlot]

    public var modelConfig: ModelConfig { manifest.model }
    var reference: String { "refs/heads/\(branch)" }

    /// Where a run keeps its history.
    public static func location(inRun run: URL) -> URL { run.appendingPathComponent("history.git", isDirectory: true) }

    init(repository: GitRepository, url: URL, branch: String, manifest: HistoryManifest) {
        self.repository = repository
        self.url = url
        self.branch = branch
        self.manifest = manifest
        let layout = ParameterLayout(manifest.model)
        let lora = manifest.lora.map { LoRALayout(model: manifest.model, layout: layout, rank: $0.rank, wrapLMHead: $0.wrapLMHead) }
        let wrapped = lora?.wrappedTensorNames ?? []
        parameterLayout = layout
        loraLayout = lora
        replicatedSlots = TensorSlot.weights(layout).filter { !wrapped.contains($0.name) }
    }

    // MARK: create and open

    /// Starts a history at `url` (which must not exist or be empty): the root commit on `main`
    /// holding the run's config file, tokenizer, and initial weights (a safetensors file with every
    /// tensor of `modelConfig`), tagged `snapshot/round-0`. `totalHeads` defaults to `lora.heads`.
    public static func create(at url: URL, config: Data, tokenizer: Data?, initialWeights: Data,
                              modelConfig: ModelConfig, lora: LoRAConfig?, totalHeads: Int? = nil) throws -> MergeHistory {
        try modelConfig.validate()
        try lora?.validate()
        let heads = totalHeads ?? lora?.heads ?? 1
        guard heads >= 1 else { throw LTEError("history: total heads must be at least 1 (got \(heads))") }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: url.path), !entries.isEmpty {
            throw LTEError("history \(url.path) already exists; open it to resume the run")
        }
        // Everything is checked before the repository exists, so a bad call leaves nothing behind.
        let layout = ParameterLayout(modelConfig)
        let weights = FloatBuffer(count: layout.count)
        try TensorSlot.decode(initialWeights, slots: TensorSlot.weights(layout), into: weights.pointer, source: "initial weights")
        let hash = WeightsHash.sha256(params: weights.pointer, layout: layout)
        // The manifest as a reopened history will read it, so this instance behaves the same.
        let manifest = try HistoryJSON.decode(HistoryManifest.self, from: try HistoryJSON.encode(
            HistoryManifest(model: modelConfig, lora: lora, totalHeads: heads)), source: "history.json")
        let history = MergeHistory(repository: try GitRepository.createBare(at: url), url: url, branch: "main", manifest: manifest)
        let record = RoundRecord(round: 0, heads: [], pushes: [], merge: history.mergeParameters(), losses: [], tokens: 0,
                                 learningRate: 0, bytes: nil, timing: .init(), notes: [:], weightsSHA256: hash, snapshot: true,
                                 frozenWeights: history.frozenWeights(weights.pointer),
                                 velocitySHA256: history.makeOuterOptimizer().map { history.velocityHash($0.velocity.pointer) })
        let repo = history.repository
        var files: [String: GitOID] = [
            "config.json": try repo.writeBlob(config),
            "history.json": try repo.writeBlob(try HistoryJSON.encode(manifest)),
            "round.json": try repo.writeBlob(try HistoryJSON.encode(record)),
            Paths.weights: try repo.writeBlob(try history.encodeWeights(weights.pointer)),
        ]
        if let tokenizer { files["tokenizer.json"] = try repo.writeBlob(tokenizer) }
        let root = try repo.commit(tree: try repo.writeTree(files), parents: [],
                                   message: "round 0: initial weights\n\nWeights-SHA256: \(hash)\n",
                                   updating: history.reference, expected: nil)
        try repo.createTag(history.snapshotTag(round: 0), target: root, message: "round 0 weights, sha256 \(hash)\n")
        return history
    }

    /// Opens an existing history to read it or append to `branch`. `modelConfig` must be the one
    /// the history was made with: replaying one model's deltas onto another makes no sense.
    public static func open(at url: URL, modelConfig: ModelConfig, branch: String = "main") throws -> MergeHistory {
        guard FileManager.default.fileExists(atPath: url.path) else { throw LTEError("history \(url.path) does not exist") }
        let repo = try GitRepository.open(at: url)
        guard let tip = try repo.referenceTarget("refs/heads/\(branch)") else {
            throw LTEError("history \(url.path) has no branch \(branch.debugDescription)")
        }
        guard let data = try repo.readFile("history.json", inCommit: tip) else {
            throw LTEError("history \(url.path): branch \(branch) has no history.json (not an LTE history?)")
        }
        let manifest = try HistoryJSON.decode(HistoryManifest.self, from: data, source: "history \(url.path): history.json")
        // Compared as both read back from JSON, so a float's decimal form cannot make a difference.
        let given = try HistoryJSON.decode(ModelConfig.self, from: try HistoryJSON.encode(modelConfig), source: "model config")
        if manifest.model != given {
            throw LTEError("history \(url.path) was made with a different model config (\(differences(manifest.model, modelConfig)))")
        }
        return MergeHistory(repository: repo, url: url, branch: branch, manifest: manifest)
    }

    /// "hidden_size: 64 in the history, 32 given; …" for the keys that differ.
    static func differences(_ recorded: ModelConfig, _ given: ModelConfig) -> String {
        func dict(_ c: ModelConfig) -> [String: String] {
            let data = (try? JSONEncoder().encode(c)) ?? Data()
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return object.mapValues { "\($0)" }
        }
        let a = dict(recorded), b = dict(given)
        return a.keys.sorted().filter { a[$0] != b[$0] }
            .map { "\($0): \(a[$0]!) in the history, \(b[$0] ?? "none") given" }.joined(separator: "; ")
    }

    // MARK: branches

    /// Creates `refs/heads/<name>` at the round `revision` names, so a new line of training can
    /// continue from it (`open(at:modelConfig:branch:)` then appends to that line). Returns its id.
    @discardableResult
    public func branch(from revision: String, name: String) throws -> String {
        guard !name.hasPrefix("workers/"), GitRepository.isValidReferenceName("refs/heads/\(name)") else {
            throw LTEError("history \(url.path): \(name.debugDescription) is not a usable branch name")
        }
        let commit = try resolveRound(revision).commit
        try repository.updateReference("refs/heads/\(name)", to: commit.id, expected: nil, message: "branch from \(revision)")
        return commit.id.hex
    }

    // MARK: shared helpers

    enum Paths {
        static let weights = "weights/model.safetensors"
        static let replicated = "replicated.safetensors"
        /// The outer optimizer's velocity m at a snapshot (`lte.outer nesterov`), beside the weights.
        static let velocity = "outer/velocity.safetensors"
        static func head(_ id: Int) -> String { "heads/\(id).safetensors" }
        /// The head id of a `heads/<id>.safetensors` path, or nil.
        static func headID(_ path: String) -> Int? {
            guard path.hasPrefix("heads/"), path.hasSuffix(".safetensors") else { return nil }
            return Int(path.dropFirst(6).dropLast(12))
        }
    }

    /// Tags on `main` are `snapshot/round-N`; other lines share round numbers with it, so theirs
    /// carry the branch name: `snapshot/<branch>/round-N`.
    func snapshotTag(round: Int) -> String {
        branch == "main" ? "snapshot/round-\(round)" : "snapshot/\(branch)/round-\(round)"
    }

    func mergeParameters() -> RoundRecord.Merge {
        guard let lora = manifest.lora else {
            return .init(rule: .average, scale: 0, scaleBits: 0, totalHeads: manifest.totalHeads, rank: 0)
        }
        var merge = RoundRecord.Merge(rule: lora.merge == .resetless ? .resetless : .resetB, scale: lora.scale, scaleBits: lora.scale.bitPattern,
                                      totalHeads: manifest.totalHeads, rank: lora.rank)
        if lora.outer != .none {
            merge.outer = lora.outer
            merge.outerLearningRate = lora.outerLearningRate
            merge.outerLearningRateBits = lora.outerLearningRate.bitPattern
            merge.outerMomentum = lora.outerMomentum
            merge.outerMomentumBits = lora.outerMomentum.bitPattern
        }
        return merge
    }

    /// The outer optimizer replay runs for this history (nil under the plain merge), with η and μ
    /// from their recorded bits; its velocity starts at zero, the root's.
    func makeOuterOptimizer() -> OuterOptimizer? {
        let merge = mergeParameters()
        guard merge.outer == .nesterov, let layout = loraLayout, let eta = merge.outerLearningRateBits, let mu = merge.outerMomentumBits else { return nil }
        return OuterOptimizer(learningRate: Float(bitPattern: eta), momentum: Float(bitPattern: mu), parameterCount: parameterLayout.count, layout: layout)
    }

    /// The wrapped tensors, where the outer optimizer's velocity lives (`outer/velocity.safetensors`).
    var velocitySlots: [TensorSlot] {
        let wrapped = loraLayout?.wrappedTensorNames ?? []
        return TensorSlot.weights(parameterLayout).filter { wrapped.contains($0.name) }
    }

    /// SHA-256 of a velocity m (laid out like the weights) over the wrapped tensors, in layout order.
    func velocityHash(_ velocity: UnsafePointer<Float>) -> WeightsDigest {
        WeightsHash.sha256(params: velocity, tensors: velocitySlots.map { ($0.offset, $0.count) })
    }

    /// What round.json records of the frozen weights: nil unless the run holds them quantized
    /// (`lte.frozen_weights`), else their format and the hash of `weights`' wrapped tensors
    /// quantized in it, the same deterministic function every node runs after a merge.
    func frozenWeights(_ weights: UnsafePointer<Float>) -> RoundRecord.FrozenWeights? {
        guard let format = manifest.lora?.frozenWeights, format != .f32, let loraLayout else { return nil }
        let quantized = QuantizedWeights(params: weights, layout: parameterLayout, names: loraLayout.wrappedTensorNames, format: format)
        return RoundRecord.FrozenWeights(format: format, sha256: WeightsHash.sha256(frozen: quantized))
    }

    /// Full weights as a snapshot file (with the `format: pt` metadata `transformers` looks for).
    func encodeWeights(_ weights: UnsafePointer<Float>) throws -> Data {
        try TensorSlot.encode(TensorSlot.weights(parameterLayout), from: weights, metadata: ["format": "pt"])
    }

    func roundRecord(_ commit: GitCommitInfo) throws -> RoundRecord? {
        guard let id = try repository.blobID(at: "round.json", inTree: commit.tree) else { return nil }
        return try HistoryJSON.decode(RoundRecord.self, from: try repository.readBlob(id),
                                      source: "history \(url.path): round.json of commit \(commit.id.short)")
    }

    func pushRecord(_ commit: GitCommitInfo) throws -> PushRecord? {
        guard let id = try repository.blobID(at: "push.json", inTree: commit.tree) else { return nil }
        return try HistoryJSON.decode(PushRecord.self, from: try repository.readBlob(id),
                                      source: "history \(url.path): push.json of commit \(commit.id.short)")
    }

    /// The tip of this line.
    func tip() throws -> GitOID {
        guard let tip = try repository.referenceTarget(reference) else {
            throw LTEError("history \(url.path) has no branch \(branch.debugDescription)")
        }
        return tip
    }
}
