import ArgumentParser
import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// `lte train`: one training process, from a config and a prepared data directory to a run directory
///
///     RUN/config.json      the effective run config (loadable with --config)
///     RUN/metrics.jsonl    one line per log interval: step, tokens, train_loss, val_loss, lr, …
///     RUN/checkpoint/      the latest checkpoint (Hugging Face files + optimizer state)
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a prepared data directory, logging metrics and saving checkpoints to a run directory.",
        discussion: """
            Options given as flags (--iterations, --lr, …) override the config file, and --set overrides \
            anything in it; RUN/config.json records the config the run actually used. A run of any mode that stops \
            can continue with --resume, which sees exactly the batches the uninterrupted run would have seen and \
            ends on the same bits. It keeps the config the run recorded: only flags and --set change it (said in \
            a line, and RUN/config.json updated), and a larger --iterations keeps the recorded learning-rate schedule.

            Examples:
              lte train --config configs/shakespeare-char-baby.json --data data/shakespeare --run runs/baby
              lte train --config configs/shakespeare-char-baby.json --data data/shakespeare --run runs/baby --resume --iterations 4000
              lte train --mode lte --config configs/shakespeare-char-baby.json --data data/shakespeare --run runs/lte --batch-size 2 --set lte.heads=8 --set lte.rank=16
            """)

    @OptionGroup var config: RunConfigOptions

    @OptionGroup var data: DataOptions

    @Option(name: .customLong("run"),
            help: ArgumentHelp("Run directory for config.json, metrics.jsonl and checkpoint/ (created if missing).", valueName: "dir"))
    var runDirectory: String

    @Option(help: ArgumentHelp("full (one dense model), lte (N heads merged every T), lora (one head, never merged), lora-merge (one head merged every T) or fedavg (N dense replicas averaged every T). Heads, rank, alpha and T come from the config's lte section; left out there, lte.rank is the smallest multiple of 8 with heads × rank ≥ the widest layer (at most the narrowest layer's input width), lte.learning_rate is 2 × training.learning_rate ÷ s (s = alpha ÷ rank) and lte.replicated_learning_rate (embeddings, norms, lm_head) is heads × training.learning_rate; RUN/config.json records the values used.", valueName: "mode"))
    var mode: TrainingMode = .full

    @Option(help: "Total optimizer steps (overrides training.iterations).")
    var iterations: Int?

    @Option(help: "Peak learning rate (overrides training.learning_rate).")
    var lr: Float?

    @Option(help: "Sequences per step (overrides training.batch_size).")
    var batchSize: Int?

    @Option(help: "Seed of initialisation and data order (overrides training.seed).")
    var seed: UInt64?

    @Option(help: "Threads for OpenBLAS and the model's own loops (overrides training.threads).")
    var threads: Int?

    @Flag(help: "Continue the run in --run from its checkpoint with the config it recorded, appending to its metrics.jsonl.")
    var resume = false

    @Flag(help: "Start the run in --run again from scratch, replacing its metrics.jsonl, checkpoint and config.json (a diverged run, or one stopped before its first checkpoint).")
    var overwrite = false

    func validate() throws {
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
    }

    /// The flags, as overrides applied after --set (so a flag wins over --set).
    var flagOverrides: [String] {
        var out: [String] = []
        if let iterations { out.append("training.iterations=\(iterations)") }
        if let lr { out.append("training.learning_rate=\(lr)") }
        if let batchSize { out.append("training.batch_size=\(batchSize)") }
        if let seed { out.append("training.seed=\(seed)") }
        if let threads { out.append("training.threads=\(threads)") }
        return out
    }

    func run() throws {
        let began = ContinuousClock.now
        let runURL = URL(fileURLWithPath: runDirectory)
        let checkpointURL = runURL.appendingPathComponent("checkpoint")
        // The config the run recorded: in its checkpoint, or (a checkpoint written before it held one) RUN/config.json.
        let recorded = resume ? (try? Checkpoint(at: checkpointURL).trainerState().runConfig)
            ?? (try? RunConfig.load(contentsOf: runURL.appendingPathComponent("config.json").path, derivingDefaults: false)) : nil
        var cfg = try recorded.map { try resumedConfig(recorded: $0) } ?? config.load(flags: flagOverrides)
        let dataset = try data.load()
        if cfg.vocabFromData {
            cfg.model.vocabSize = dataset.vocabSize
        } else if cfg.model.vocabSize < dataset.vocabSize {
            throw LTEError("config file \(config.file): model.vocab_size \(cfg.model.vocabSize) is smaller than the vocabulary of \(dataset.vocabSize) in \(data.data) (\(dataset.meta.tokenizer) tokenizer); remove vocab_size to take it from the data")
        }
        let t = cfg.training

        let metricsURL = runURL.appendingPathComponent("metrics.jsonl")
        let fm = FileManager.default
        let hasCheckpoint = fm.fileExists(atPath: checkpointURL.path)
        if resume && overwrite { throw LTEError("--resume continues the run and --overwrite starts it again: pass one of them") }
        if overwrite && fm.fileExists(atPath: MergeHistory.location(inRun: runURL).path) {
            throw LTEError("--overwrite: \(runDirectory) holds a distributed run's merge history (history.git), which lte train does not replace; choose a new --run directory")
        }
        if !resume && !overwrite && fm.fileExists(atPath: metricsURL.path) {
            throw LTEError(hasCheckpoint
                ? "run directory \(runDirectory) already holds a run (metrics.jsonl); pass --resume to continue it, --overwrite to start it again, or choose a new --run directory"
                : "run directory \(runDirectory) already holds a run (metrics.jsonl) that stopped before its first checkpoint, so it cannot --resume; pass --overwrite to start it again, or choose a new --run directory")
        }
        if resume && !hasCheckpoint {
            let again = fm.fileExists(atPath: metricsURL.path) ? "; pass --overwrite instead to start it again" : ""
            throw LTEError("--resume: run directory \(runDirectory) has no checkpoint to resume from (\(checkpointURL.path))\(again)")
        }

        try MemoryBudget.training(mode, cfg).requireAvailable(for: "training this model (--mode \(mode.rawValue), \(formatCount(ParameterLayout(cfg.model).count)) parameters)")
        BLASThreads.set(t.threads)
        Parallel.threads = t.threads
        let session = try makeSession(mode: mode, setup: TrainingSetup(config: cfg, dataset: dataset, runDirectory: runURL))

        var start = 0
        if resume {
            let checkpoint = try Checkpoint(at: checkpointURL)
            let state = try session.resume(from: checkpoint)
            if let saved = try? checkpoint.tokenizer(), let difference = Tokenizers.difference(saved, dataset.tokenizer) {
                throw LTEError("--data \(data.data) was made with another tokenizer than the checkpoint \(checkpointURL.path) (\(difference)); resume with the data the run was trained on")
            }
            try checkSameRun(saved: state, checkpoint: checkpointURL.path, config: cfg)
            guard state.step < t.iterations else {
                throw LTEError("run \(runDirectory) is already at step \(state.step) of \(t.iterations); pass a larger --iterations to train further")
            }
            start = state.step
        }

        do { try fm.createDirectory(at: runURL, withIntermediateDirectories: true) } catch {
            throw LTEError("cannot create run directory \(runDirectory): \(error.localizedDescription)")
        }
        let configURL = runURL.appendingPathComponent("config.json")
        let encoded = try cfg.encoded()
        if let recorded, let changes = try? cfg.differences(from: recorded), !changes.isEmpty {
            say("\(configURL.path) now records " + changes.map { "\($0.key) \($0.value) (was \($0.other))" }.joined(separator: ", "))
        }
        if FileManager.default.contents(atPath: configURL.path) != encoded {
            do { try encoded.write(to: configURL, options: .atomic) } catch {
                throw LTEError.posix("cannot write \(configURL.path)", fallback: error)
            }
        }
        if overwrite {
            for name in ["metrics.jsonl", "checkpoint"] { try? fm.removeItem(at: runURL.appendingPathComponent(name)) }
        }
        if resume { try MetricsFile.dropLines(after: start, in: metricsURL) }
        let metrics = try MetricsLog(url: metricsURL, truncate: !resume)

        let run = session.run
        let tokensAtStart = run.tokensSeen
        say(String(format: "training %@%@ | %@ parameters | %d tokens/step (batch %d × context %d) | data %@: %d train + %d val tokens, %@ vocab %d | %d iterations | threads %d",
                   mode.rawValue, resume ? ", resuming at step \(start)" : "", formatCount(session.parameterCount),
                   session.tokensPerStep, t.batchSize, cfg.model.contextLength, data.data, dataset.train.count, dataset.val.count,
                   dataset.meta.tokenizer, cfg.model.vocabSize, t.iterations, t.threads))

        var loop = TrainingLoop(config: t, metrics: metrics)
        loop.progress = say
        let loopBegan = ContinuousClock.now
        let stop = StopSignal()
        let valLoss: Float?
        do {
            valLoss = try loop.run(run, from: start, shouldStop: { stop.received }) { step in
                try session.save(to: checkpointURL, state: TrainerState(step: step, tokens: run.tokensSeen, seed: t.seed, runConfig: cfg))
            }
        } catch let stopped as TrainingStopped {
            say("stopped by signal at step \(stopped.step) of \(t.iterations); checkpoint \(checkpointURL.path) holds it: continue with lte train --mode \(mode.rawValue) --config \(config.file) --data \(data.data) --run \(runDirectory) --resume")
            throw ExitCode(130)
        }
        let loopSeconds = (ContinuousClock.now - loopBegan).seconds
        let tokensPerSecond = Double(run.tokensSeen - tokensAtStart) / max(loopSeconds, 1e-9)
        var done = "done: step \(t.iterations)"
        if let valLoss { done += String(format: " | val loss %.4f", valLoss) }
        done += String(format: " | %.0f tok/s | wall time %@ | checkpoint %@", tokensPerSecond,
                       formatDuration((ContinuousClock.now - began).seconds), checkpointURL.path)
        done += " | weights " + WeightsHash.sha256(params: session.finalModel.params.pointer, layout: session.finalModel.layout).hex
        say(done)
    }

    /// A resumed run continues with the config it recorded; only what the user asks for explicitly
    /// (flags and --set) changes it. The config file's values do not: a file that differs is named
    /// in a note. Extending `iterations` keeps the recorded schedule's decay end (the learning rate
    /// must not climb back up) unless `training.decay_iterations` is set too.
    private func resumedConfig(recorded: RunConfig) throws -> RunConfig {
        let source = "the config run \(runDirectory) recorded"
        var cfg = try RunConfig.decode(recorded.encoded(), source: source, overrides: config.set + flagOverrides, derivingDefaults: false)
        let overridden = (config.set + flagOverrides).map { String($0.prefix { $0 != "=" }) }
        let file = try config.load(flags: flagOverrides)
        let ignored = try file.differences(from: cfg).filter { d in !(d.key == "model.vocab_size" && file.vocabFromData) }
        if !ignored.isEmpty {
            say("note: resuming with the config the run recorded; --config \(config.file) differs in "
                + ignored.map { "\($0.key) (\($0.value), the run has \($0.other))" }.joined(separator: ", ")
                + ", which the run keeps: pass a flag or --set to change them")
        }
        if cfg.training.iterations != recorded.training.iterations, !overridden.contains("training.decay_iterations"),
           recorded.training.decayIterations == nil {
            cfg.training.decayIterations = recorded.training.iterations
            say("note: the learning rate keeps its recorded schedule, which decays until step \(recorded.training.iterations); pass --set training.decay_iterations=N to change it")
        }
        return cfg
    }

    /// A resumed run must replay the same data order: same seed and batch size as the saved run.
    private func checkSameRun(saved: TrainerState, checkpoint: String, config cfg: RunConfig) throws {
        guard saved.seed == cfg.training.seed else {
            throw LTEError("checkpoint \(checkpoint) was made with seed \(saved.seed), this config has \(cfg.training.seed); pass --seed \(saved.seed) to resume it")
        }
        if let savedBatch = saved.runConfig?.training.batchSize, savedBatch != cfg.training.batchSize {
            throw LTEError("checkpoint \(checkpoint) was made with batch size \(savedBatch), this config has \(cfg.training.batchSize); pass --batch-size \(savedBatch) to resume it")
        }
    }
}
