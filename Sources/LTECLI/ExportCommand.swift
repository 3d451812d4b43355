import ArgumentParser
import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics
import LTEStore

/// `lte export`: weights for `transformers`, or a round's low-rank delta for `peft`.
struct ExportCommand: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case hf, peft, gguf }

    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a Hugging Face LLaMA model (--format hf), a GGUF file for llama.cpp (--format gguf) or a round's merged delta as a PEFT LoRA adapter (--format peft).",
        discussion: """
        --format hf writes OUT/model.safetensors (float32, LLaMA tensor names), OUT/config.json \
        (LlamaConfig, tie_word_embeddings false) and the run's tokenizer.json, loadable with \
        LlamaForCausalLM.from_pretrained(OUT). The source is a round of a run's history (--run RUN \
        --from REV, replayed and checked against the recorded hash) or a checkpoint directory (--from DIR).

        --format gguf writes OUT as one GGUF v3 file (float32, llama.cpp tensor names, Q/K permuted to \
        llama.cpp's rotary layout, tokenizer.ggml.model gpt2 with the run's tokens and merges), from the \
        same sources as --format hf.

        --format peft (needs --run) writes the merged delta of round k = REV as one LoRA adapter on top \
        of round k-1, the round it was merged onto:
            W_k = W_(k-1) + (s/N) * sum over the round's heads of (B_i A_i - B_i0 A_i0)
        stacked into one LoRA of rank r x terms (lora_A = the A's by rows, lora_B = the B's and -B0's by \
        columns, lora_alpha = rank x s/N so PEFT's scale lora_alpha/r is exactly s/N, use_rslora false), \
        with the round's averaged embeddings, norms and (unless lte.wrap_lm_head) lm_head as \
        modules_to_save. Round k-1 itself is written to OUT/base (as --format hf) and named, by absolute \
        path, in base_model_name_or_path, so AutoPeftModelForCausalLM.from_pretrained(OUT), or \
        PeftModel.from_pretrained(<OUT/base>, OUT), computes round k's logits. OUT/lte_export.json names \
        both rounds' commits.

        --format peft --heads writes one adapter per head merged in round k instead, OUT/head-<id>/, \
        each the head's share (s/N)(B_i A_i - B_i0 A_i0) with no modules_to_save: all of them active \
        together on round k-1, with round k's replicated tensors, again give round k.

        Examples:
          lte export --run runs/launch --from main --format hf --out hf/main
          lte export --from runs/baby/checkpoint --out hf/baby
          lte export --run runs/launch --from 6 --format peft --out adapters/round-6
          lte export --run runs/launch --from 6 --format peft --heads --out adapters/heads-6
        """)

    @Option(help: ArgumentHelp("With --run: a round number, commit id, tag or branch (default main). Without: a checkpoint or Hugging Face model directory.", valueName: "rev|dir"))
    var from: String?

    @Option(name: .customLong("run"), help: ArgumentHelp("Run directory holding history.git and config.json; --from is then a revision.", valueName: "dir"))
    var runDirectory: String?

    @Option(help: ArgumentHelp("History line to read (main, or a branch started with lte server --from).", valueName: "name"))
    var branch: String = "main"

    @Option(help: ArgumentHelp("Directory to write (an existing one only if lte wrote it, unless --force); with --format gguf, the file.", valueName: "dir|file"))
    var out: String

    @Option(help: "hf: a LlamaForCausalLM model; gguf: one GGUF file for llama.cpp; peft: a LoRA adapter holding one round's delta.")
    var format: Format = .hf

    @Flag(help: "With --format peft: one adapter per head merged in the round (OUT/head-<id>) instead of one for the round.")
    var heads = false

    @Flag(help: OutputTarget.forceHelp) var force = false

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if heads && format != .peft { throw ValidationError("--heads goes with --format peft") }
        if runDirectory == nil && from == nil { throw ValidationError("give --from DIR (a checkpoint), or --run RUN [--from REV]") }
    }

    func run() throws {
        threads.apply()
        let outURL = try OutputTarget.check(out, kind: format == .gguf ? .file(magic: "GGUF") : .modelDirectory, force: force)
        guard let runDirectory else {
            guard format != .peft else {
                throw LTEError("--format peft exports a round's head factors, which only a run's history has; pass --run RUN --from REV")
            }
            if format == .gguf {
                let source = try HuggingFaceModel.read(from: URL(fileURLWithPath: from!))
                try exportGGUF(source.weights, source.config, tokenizer: source.tokenizer, special: source.special, what: from!, to: outURL)
            } else {
                try exportCheckpoint(from!, to: outURL)
            }
            return
        }
        let history = try RunHistoryOptions.open(run: runDirectory, branch: branch)
        let revision = from ?? "main"
        switch format {
        case .hf: try exportRound(history, revision, to: outURL)
        case .peft: try exportAdapter(history, revision, to: outURL)
        case .gguf:
            let (weights, result) = try history.replay(to: revision)
            try exportGGUF(weights, history.modelConfig, tokenizer: try history.tokenizerData(at: revision), special: .none,
                           what: "round \(result.round) (\(result.commit.prefix(10)))", to: outURL)
        }
    }

    private func exportCheckpoint(_ dir: String, to url: URL) throws {
        if FileManager.default.fileExists(atPath: MergeHistory.location(inRun: URL(fileURLWithPath: dir)).path) {
            throw LTEError("\(dir) is a run directory; export one of its rounds with --run \(dir) --from REV (or its checkpoint with --from \(dir)/checkpoint)")
        }
        let source = try HuggingFaceModel.read(from: URL(fileURLWithPath: dir))
        try HuggingFaceModel.write(weights: source.weights, config: source.config, special: source.special, tokenizer: source.tokenizer,
                                   tokenizerConfig: source.tokenizerConfig, source: "Exported by `lte export` from \(dir).", to: url)
        let hash = WeightsHash.sha256(params: source.weights.pointer, layout: ParameterLayout(source.config))
        say("exported \(dir) as a Hugging Face LLaMA model | weights \(hash) | wrote \(out)")
    }

    private func exportGGUF(_ weights: FloatBuffer, _ config: ModelConfig, tokenizer: Data?, special: LlamaConfigFile.SpecialTokens,
                            what: String, to url: URL) throws {
        let parsed = try tokenizer.map { try Tokenizers.decode($0, source: URL(fileURLWithPath: "tokenizer.json")) }
        try GGUFFile.write(weights: weights, config: config, tokenizer: parsed, special: special, to: url)
        say("exported \(what) as GGUF v3 (float32\(parsed == nil ? ", no tokenizer" : ", \(parsed!.kind) tokenizer")) | wrote \(out)")
    }

    private func exportRound(_ history: MergeHistory, _ revision: String, to url: URL) throws {
        let (weights, result) = try history.replay(to: revision)
        try HuggingFaceModel.write(weights: weights, config: history.modelConfig, tokenizer: try history.tokenizerData(at: revision),
                                   source: "Round \(result.round) (commit \(result.commit)) of an LTE run's merge history, weights hash \(result.weightsHash).",
                                   to: url)
        say("exported round \(result.round) (\(result.commit.prefix(10))) as a Hugging Face LLaMA model | weights \(result.weightsHash) match the history | wrote \(out)")
    }

    /// The adapters and, in OUT/base, the round they apply to (exported like --format hf), named by
    /// absolute path in base_model_name_or_path so `AutoPeftModelForCausalLM.from_pretrained(OUT)`
    /// loads it with no hub lookup. All of it is written beside OUT and swapped in at once.
    private func exportAdapter(_ history: MergeHistory, _ revision: String, to url: URL) throws {
        let delta = try history.roundDelta(revision)
        let (baseWeights, baseResult) = try history.replay(to: delta.baseCommit)
        let basePath = url.standardizedFileURL.appendingPathComponent(Self.baseDirectory).path
        let order = Self.heads(of: delta)
        try AtomicDirectory.write(to: url) { dir in
            try HuggingFaceModel.write(weights: baseWeights, config: history.modelConfig, tokenizer: try history.tokenizerData(at: delta.baseCommit),
                                       source: "Round \(baseResult.round) (commit \(baseResult.commit)) of an LTE run's merge history, the base of the adapter beside it.",
                                       to: dir.appendingPathComponent(Self.baseDirectory))
            if !heads {
                let files = try PeftAdapter.files(terms: delta.terms, layout: delta.layout, factor: delta.factor,
                                                  modulesToSave: (delta.replicatedSlots, delta.replicated), baseModel: basePath)
                    .merging([Self.notesFile: try notes(delta, heads: order)]) { _, notes in notes }
                for (name, data) in files.sorted(by: { $0.key < $1.key }) { try data.write(to: dir.appendingPathComponent(name)) }
                return
            }
            for h in order {
                try PeftAdapter.write(terms: delta.terms.filter { $0.head == h }, layout: delta.layout, factor: delta.factor, baseModel: basePath,
                                      extraFiles: [Self.notesFile: try notes(delta, heads: [h])], to: dir.appendingPathComponent("head-\(h)"))
            }
        }
        let base = "base: round \(delta.baseRound) (\(delta.baseCommit.prefix(10))) in \(out)/\(Self.baseDirectory)"
        if !heads {
            say("exported round \(delta.round) (\(delta.commit.prefix(10))) as a PEFT LoRA adapter of rank \(delta.layout.rank * delta.terms.count) "
                + "(\(delta.terms.count) terms of rank \(delta.layout.rank), scale s/N = \(delta.factor)) | \(base) | wrote \(out)")
        } else {
            say("exported round \(delta.round) (\(delta.commit.prefix(10))) as \(order.count) PEFT LoRA adapters, one per head "
                + "(\(out)/head-{\(order.map(String.init).joined(separator: ","))}) | \(base)")
        }
    }

    static let baseDirectory = "base"

    static let notesFile = "lte_export.json"

    /// The heads merged in the round, in summation order.
    private static func heads(of delta: RoundDelta) -> [Int] {
        var order: [Int] = []
        for t in delta.terms where !order.contains(t.head) { order.append(t.head) }
        return order
    }

    /// Where the adapter came from and what it applies to, for people and the parity script.
    private func notes(_ delta: RoundDelta, heads: [Int]) throws -> Data {
        let object: [String: Any] = [
            "round": delta.round, "commit": delta.commit, "base_round": delta.baseRound, "base_commit": delta.baseCommit,
            "heads": heads, "scale_over_heads": Double(delta.factor), "rank_per_term": delta.layout.rank,
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) + Data("\n".utf8)
    }
}
