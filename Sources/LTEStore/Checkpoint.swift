import Foundation
import LTEBase
import LTEData
import LTEModel
import LTETraining

/// Where a run stands, saved beside its weights so `lte train --resume` continues exactly.
public struct TrainerState: Equatable, Sendable {
    /// Optimizer steps taken (the next iteration to run).
    public var step: Int
    /// Cumulative tokens seen (DESIGN.md §2 accounting).
    public var tokens: Int
    public var seed: UInt64
    /// The run config the run used (written as in RUN/config.json).
    public var runConfig: RunConfig?

    public init(step: Int, tokens: Int, seed: UInt64, runConfig: RunConfig? = nil) {
        self.step = step; self.tokens = tokens; self.seed = seed; self.runConfig = runConfig
    }
}

/// A checkpoint directory, loadable by `transformers`' `LlamaForCausalLM.from_pretrained`:
///
///     model.safetensors      every parameter, Hugging Face LLaMA names, [out, in], float32
///     config.json            the Hugging Face LlamaConfig (`LlamaConfigFile`)
///     tokenizer.json         the data directory's tokenizer, a Hugging Face tokenizer file
///     tokenizer_config.json  and generation_config.json, so `AutoTokenizer` and `generate` load it
///     optimizer.safetensors  for resuming: AdamW moments as m.<name>, v.<name>; metadata step
///     trainer_state.json     for resuming: step, tokens, seed, run config
///     replicas.safetensors   for resuming a replicated mode: every head and replica (Checkpoint+Replicas)
///
/// `save` writes into a temporary sibling directory and swaps it in with one rename, so a crash
/// leaves either the previous checkpoint or the new one, never a mixture. `load` checks every tensor's
/// name and shape against the model it fills, and reports the first difference in one line.
public struct Checkpoint {
    public static let modelFile = "model.safetensors"
    public static let configFile = "config.json"
    public static let tokenizerFile = "tokenizer.json"
    public static let optimizerFile = "optimizer.safetensors"
    public static let stateFile = "trainer_state.json"

    public let url: URL
    private var path: String { url.path }

    /// An existing checkpoint: the directory, its weights and its config must be there.
    public init(at url: URL) throws {
        self.url = url
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LTEError("checkpoint \(url.path) does not exist")
        }
        for name in [Self.modelFile, Self.configFile] where !exists(name) {
            throw LTEError("checkpoint \(url.path) has no \(name) (incomplete or not a checkpoint)")
        }
    }

    private func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    private func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name).path) }

    /// True when the checkpoint holds what resuming needs (optimizer moments and trainer state).
    public var isResumable: Bool { exists(Self.optimizerFile) && exists(Self.stateFile) }

    // MARK: reading

    /// The model the checkpoint was made for, from its config.json.
    public func modelConfig() throws -> ModelConfig {
        try LlamaConfigFile.read(from: file(Self.configFile))
    }

    public func tokenizer() throws -> any Tokenizer {
        guard exists(Self.tokenizerFile) else {
            throw LTEError("checkpoint \(path) has no \(Self.tokenizerFile), so its token ids cannot be turned into text")
        }
        return try Tokenizers.load(from: file(Self.tokenizerFile))
    }

    /// Fills `model.params` from model.safetensors after checking that the checkpoint holds exactly
    /// the model's tensors, with the model's shapes, finite values, and a config.json for the same model.
    public func load(into model: Transformer) throws {
        let weights = try SafeTensorsFile(contentsOf: file(Self.modelFile))
        try check(weights, against: model.layout.tensors.map { ($0.name, $0.shape) }, what: "model")
        let saved = try modelConfig()
        let differences = Self.differences(saved, model.config)
        if let first = differences.first {
            throw LTEError("checkpoint \(path) was made for a different model: its config.json has \(first.name) \(first.saved), this config has \(first.expected)")
        }
        for t in model.layout.tensors {
            let values = weights[t.name]!.values
            guard values.allSatisfy(\.isFinite) else {
                throw LTEError("checkpoint \(path): tensor \(t.name) holds NaN or infinite values")
            }
            values.withUnsafeBufferPointer { (model.params.pointer + t.offset).update(from: $0.baseAddress!, count: t.count) }
        }
        // Finite and well shaped is not enough: a flipped bit is still a float. lte records the
        // weights hash when it writes a checkpoint, so a damaged file is caught here, not in training.
        if let recorded = weights.metadata[Self.weightsHashKey] {
            let hash = WeightsHash.sha256(params: model.params.pointer, layout: model.layout)
            guard hash.hex == recorded else {
                throw LTEError("checkpoint \(path): \(Self.modelFile) is damaged: its weights hash \(hash.short)… differs from the \(String(recorded.prefix(12)))… recorded when it was written")
            }
        }
    }

    /// The key of model.safetensors' metadata under which lte records the weights hash it wrote.
    static let weightsHashKey = "lte_weights_sha256"

    /// Fills the moments and step of an optimizer made by `AdamW(model:config:)` for `model`.
    public func loadOptimizer(into optimizer: AdamW, for model: Transformer) throws {
        guard exists(Self.optimizerFile) else {
            throw LTEError("checkpoint \(path) has no \(Self.optimizerFile): it holds weights only and cannot be resumed")
        }
        let state = try SafeTensorsFile(contentsOf: file(Self.optimizerFile))
        let moments = Self.momentTensors(model)
        try check(state, against: moments.map { ($0.name, $0.shape) }, what: "optimizer")
        guard let raw = state.metadata["step"], let step = Int(raw), step >= 0 else {
            throw LTEError("checkpoint \(path): \(Self.optimizerFile) has no valid \"step\" in its metadata")
        }
        precondition(optimizer.m.count >= model.gradLayout.count, "loadOptimizer: optimizer is not laid out like the model's gradients")
        for t in moments {
            let target = (t.isSecondMoment ? optimizer.v : optimizer.m).pointer + t.offset
            state[t.name]!.values.withUnsafeBufferPointer { target.update(from: $0.baseAddress!, count: $0.count) }
        }
        optimizer.step = step
    }

    public func trainerState() throws -> TrainerState {
        let stateURL = file(Self.stateFile)
        guard let data = FileManager.default.contents(atPath: stateURL.path) else {
            throw LTEError("checkpoint \(path) has no \(Self.stateFile): it holds weights only and cannot be resumed")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let step = (json["step"] as? NSNumber)?.intValue, let tokens = (json["tokens"] as? NSNumber)?.intValue,
              let seed = (json["seed"] as? NSNumber)?.uint64Value, step >= 0, tokens >= 0 else {
            throw LTEError("\(stateURL.path) is not valid: expected {\"step\", \"tokens\", \"seed\", \"run_config\"}")
        }
        var runConfig: RunConfig?
        if let config = json["run_config"], !(config is NSNull) {
            guard config is [String: Any], let data = try? JSONSerialization.data(withJSONObject: config) else {
                throw LTEError("\(stateURL.path): \"run_config\" must be an object")
            }
            runConfig = try RunConfig.decode(data, source: "\(stateURL.path): run_config", derivingDefaults: false)
        }
        return TrainerState(step: step, tokens: tokens, seed: seed, runConfig: runConfig)
    }

    /// The first way `file` differs from the expected (name, shape) list: a shape, a missing tensor,
    /// or an extra one.
    private func check(_ file: SafeTensorsFile, against expected: [(name: String, shape: [Int])], what: String) throws {
        let source = what == "model" ? "" : " (\(Self.optimizerFile))"
        func different(_ why: String) -> LTEError {
            LTEError("checkpoint \(path) was made for a different model\(source): \(why)")
        }
        for (name, shape) in expected {
            guard let tensor = file[name] else { throw different("it has no \(name), which this config expects") }
            guard tensor.shape == shape else {
                throw different("\(name) has shape \(tensor.shape), this config expects \(shape)")
            }
        }
        let names = Set(expected.map(\.name))
        if let extra = file.names.first(where: { !names.contains($0) }) {
            throw different("it has \(extra), which this config does not")
        }
    }

    /// Config fields that change the model without changing any tensor's shape.
    static func differences(_ saved: ModelConfig, _ expected: ModelConfig) -> [(name: String, saved: String, expected: String)] {
        var out: [(String, String, String)] = []
        func compare<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { out.append((name, "\(a)", "\(b)")) } }
        compare("vocab_size", saved.vocabSize, expected.vocabSize)
        compare("hidden_size", saved.dim, expected.dim)
        compare("num_hidden_layers", saved.layers, expected.layers)
        compare("intermediate_size", saved.ffnDim, expected.ffnDim)
        compare("num_attention_heads", saved.heads, expected.heads)
        compare("num_key_value_heads", saved.kvHeads, expected.kvHeads)
        compare("max_position_embeddings", saved.contextLength, expected.contextLength)
        compare("rope_theta", saved.ropeTheta, expected.ropeTheta)
        compare("rms_norm_eps", saved.normEps, expected.normEps)
        compare("rope_scaling", saved.ropeScaling.map { "\($0)" } ?? "none", expected.ropeScaling.map { "\($0)" } ?? "none")
        return out
    }

    /// AdamW's moments, named and shaped like the trainable tensors, at their offsets in m and v.
    private struct Moment { let name: String, shape: [Int], offset: Int, isSecondMoment: Bool }

    private static func momentTensors(_ model: Transformer) -> [Moment] {
        model.gradLayout.tensors.flatMap { t in
            [Moment(name: "m." + t.name, shape: t.shape, offset: t.offset, isSecondMoment: false),
             Moment(name: "v." + t.name, shape: t.shape, offset: t.offset, isSecondMoment: true)]
        }
    }

    // MARK: writing

    /// Writes a checkpoint of `model` (and, for resuming, `optimizer` and `state`; for sampling,
    /// `tokenizer`) to `url`, replacing any checkpoint there in one atomic step.
    @discardableResult
    public static func save(model: Transformer, optimizer: AdamW? = nil, state: TrainerState? = nil,
                            tokenizer: (any Tokenizer)? = nil, replicas: ReplicaRunState? = nil, to url: URL) throws -> Checkpoint {
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        let partialPrefix = "." + url.lastPathComponent + ".partial-"
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw LTEError("cannot create directory \(parent.path): \(error.localizedDescription)")
        }
        // Left behind by a crash mid-save: never a checkpoint, always safe to remove.
        for stale in (try? fm.contentsOfDirectory(atPath: parent.path)) ?? [] where stale.hasPrefix(partialPrefix) {
            try? fm.removeItem(at: parent.appendingPathComponent(stale))
        }
        let temporary = parent.appendingPathComponent(partialPrefix + UUID().uuidString)
        do { try fm.createDirectory(at: temporary, withIntermediateDirectories: false) } catch {
            throw LTEError("cannot create directory \(temporary.path): \(error.localizedDescription)")
        }
        do {
            try writeFiles(model: model, optimizer: optimizer, state: state, tokenizer: tokenizer, into: temporary)
            if let replicas { try writeReplicas(replicas, into: temporary) }
            try DirectorySwap.replace(url, with: temporary)
        } catch {
            try? fm.removeItem(at: temporary)
            throw error
        }
        return try Checkpoint(at: url)
    }

    private static func writeFiles(model: Transformer, optimizer: AdamW?, state: TrainerState?,
                                   tokenizer: (any Tokenizer)?, into dir: URL) throws {
        let views = model.layout.tensors.map {
            SafeTensorsFile.TensorView(name: $0.name, shape: $0.shape,
                                       data: UnsafeBufferPointer(start: model.params.pointer + $0.offset, count: $0.count))
        }
        // "format": "pt" is what transformers looks for before loading a safetensors file.
        let hash = WeightsHash.sha256(params: model.params.pointer, layout: model.layout)
        try DurableFile.write(try SafeTensorsFile.encode(views, metadata: ["format": "pt", weightsHashKey: hash.hex]),
                              to: dir.appendingPathComponent(modelFile))
        try DurableFile.write(LlamaConfigFile.encode(model.config), to: dir.appendingPathComponent(configFile))
        try DurableFile.write(HuggingFaceMetadata.generationConfig(.none), to: dir.appendingPathComponent(HuggingFaceMetadata.generationConfigFile))
        if let tokenizer {
            let url = dir.appendingPathComponent(tokenizerFile)
            try tokenizer.save(to: url)
            try DurableFile.sync(url)
            try DurableFile.write(HuggingFaceMetadata.tokenizerConfig(contextLength: model.config.contextLength),
                                  to: dir.appendingPathComponent(HuggingFaceMetadata.tokenizerConfigFile))
        }
        if let optimizer {
            precondition(optimizer.m.count >= model.gradLayout.count, "Checkpoint.save: optimizer is not laid out like the model's gradients")
            let moments = momentTensors(model).map {
                SafeTensorsFile.TensorView(name: $0.name, shape: $0.shape,
                                           data: UnsafeBufferPointer(start: ($0.isSecondMoment ? optimizer.v : optimizer.m).pointer + $0.offset,
                                                                     count: $0.shape.reduce(1, *)))
            }
            try DurableFile.write(try SafeTensorsFile.encode(moments, metadata: ["format": "pt", "step": String(optimizer.step)]),
                                  to: dir.appendingPathComponent(optimizerFile))
        }
        if let state {
            var json: [String: Any] = ["step": state.step, "tokens": state.tokens, "seed": NSNumber(value: state.seed)]
            if let config = state.runConfig {
                json["run_config"] = try JSONSerialization.jsonObject(with: config.encoded())
            }
            let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .prettyPrinted])
            try DurableFile.write(data + Data("\n".utf8), to: dir.appendingPathComponent(stateFile))
        }
    }
}

/// Files written and flushed to disk before the directory holding them is renamed into place.
enum DurableFile {
    /// Written with write(2) and fsync(2) themselves, so a failure carries the system's reason
    /// ("No space left on device", "File too large"), which Foundation's writers do not always keep.
    static func write(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LTEError.posix("cannot write \(url.path)") }
        defer { close(fd) }
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw LTEError.posix("cannot write \(url.path)") }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw LTEError.posix("cannot flush \(url.path) to disk") }
    }

    static func sync(_ url: URL) throws {
        do {
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.synchronize()
        } catch {
            throw LTEError.posix("cannot flush \(url.path) to disk", fallback: error)
        }
    }
}

/// Puts a fully written directory where another may already stand, so that at every instant the
/// destination is either the old directory or the new one.
enum DirectorySwap {
    static func replace(_ destination: URL, with source: URL) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: destination.path) {
            guard rename(source.path, destination.path) == 0 else {
                throw LTEError("cannot move \(source.path) to \(destination.path): \(String(cString: strerror(errno)))")
            }
            return
        }
        if exchange(source, destination) {
            try? fm.removeItem(at: source)   // now the old directory
            return
        }
        // No atomic exchange (old kernel or file system): move the old one aside first.
        let aside = destination.deletingLastPathComponent()
            .appendingPathComponent("." + destination.lastPathComponent + ".partial-old-" + UUID().uuidString)
        guard rename(destination.path, aside.path) == 0 else {
            throw LTEError("cannot move \(destination.path) aside: \(String(cString: strerror(errno)))")
        }
        guard rename(source.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = rename(aside.path, destination.path)
            throw LTEError("cannot move \(source.path) to \(destination.path): \(reason)")
        }
        try? fm.removeItem(at: aside)
    }

    /// renameat2(RENAME_EXCHANGE) on Linux, looked up at run time (Glibc's module map hides it).
    private static func exchange(_ a: URL, _ b: URL) -> Bool {
        #if os(Linux)
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return false }
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        let renameExchange: UInt32 = 1 << 1
        return renameat2(AT_FDCWD, a.path, AT_FDCWD, b.path, renameExchange) == 0
        #else
        return false
        #endif
    }
}
