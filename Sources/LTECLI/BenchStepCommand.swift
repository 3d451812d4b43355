import ArgumentParser
import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics
import LTETraining

struct BenchStep: ParsableCommand {
    /// What `--mode` times.
    enum Mode: String, CaseIterable, ExpressibleByArgument {
        /// The dense AdamW step.
        case full
        /// One worker's heads on frozen W.
        case lte
        /// One head, W frozen, never merged.
        case lora
        /// The forward pass and loss only.
        case forward
    }

    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time training steps of a config's model and report tokens/s and MFU (model FLOPs/s ÷ measured sgemm peak).",
        discussion: """
            Steps run on random tokens; the sgemm rate is sampled after every step, so MFU compares like with like. \
            With --mode lte, lora or forward the full-rank step is timed too, alternating step by step, and the speedup reported.

            Examples:
              lte bench step --config configs/bench-256.json --threads 1 --json
              lte bench step --config configs/bench-256.json --mode lte --heads 1
              lte bench step --config configs/bench-256.json --mode forward --threads 2
            """)

    @OptionGroup var config: RunConfigOptions
    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "full (dense AdamW step), lte (one worker's heads on frozen W), lora (one head, W frozen) or forward (no backward).")
    var mode: Mode = .full
    @Option(help: "LTE heads on the worker (lte mode; default: the config's lte.heads).") var heads: Int?
    @Option(help: "Timed steps (the median is reported).") var steps: Int = 20
    @Option(help: "Untimed warm-up steps.") var warmup: Int = 3
    @Flag(inversion: .prefixedNo, help: "Also time the full-rank step in the same run and report the speedup (lte, lora, forward).")
    var baseline = true
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    var threads: Int { threadOptions.threads }

    func run() throws {
        guard steps >= 1, warmup >= 0 else { throw LTEError("--steps must be at least 1 and --warmup at least 0") }
        if let heads, heads < 1 { throw LTEError("--heads must be at least 1") }
        let cfg = try config.load()
        var model = cfg.model
        if cfg.vocabFromData { model.vocabSize = 256 }
        threadOptions.apply()
        _ = SgemmPeak.measure(seconds: 0.3)   // warm OpenBLAS's buffers and the CPU clock
        // What the process holds before any model: the runtime, OpenBLAS, the sgemm operands.
        let baselineRSS = Double(ProcessMemory.residentBytes() ?? 0) / 1_048_576
        let t = cfg.training
        // Everything the timed candidates hold at once, refused before any is made.
        var lora = cfg.lte
        lora.heads = mode == .lora ? 1 : (heads ?? lora.heads)
        var needed = mode == .full || baseline ? MemoryBudget.full(model, batch: t.batchSize, recompute: t.recompute) : .zero
        switch mode {
        case .lte, .lora: needed = needed + .worker(model, lora: lora, heads: lora.heads, totalHeads: lora.heads, batch: t.batchSize, recompute: t.recompute)
        case .forward: needed = needed + .forward(model, batch: t.batchSize)
        case .full: break
        }
        try needed.requireAvailable(for: "benchmarking this model (\(formatCount(ParameterLayout(model).count)) parameters)")
        var candidates = [StepBenchmark.Candidate]()
        if mode == .full || baseline { candidates.append(try fullRank(model, t)) }
        var budget = MemoryBudget.full(model, batch: t.batchSize, recompute: t.recompute)
        var extra: [String: Any] = [:]
        switch mode {
        case .lte, .lora:
            let (candidate, needed) = try adapters(model, t, lora)
            candidates.append(candidate)
            budget = needed
            extra = ["heads": lora.heads, "rank": lora.rank, "merge_every": lora.mergeEvery, "frozen": lora.frozenWeights.rawValue]
        case .forward:
            candidates.append(try forwardOnly(model, t))
            budget = .forward(model, batch: t.batchSize)
        case .full:
            break
        }
        let results = StepBenchmark.time(candidates, threads: threads, warmup: warmup, steps: steps)
        let r = results.last!, full = results.first { $0.mode == "full" }
        if let full, mode != .full {
            extra["full_tokens_per_s"] = (full.tokensPerSecond * 10).rounded() / 10
            extra["speedup_vs_full"] = (r.tokensPerSecond / full.tokensPerSecond * 1000).rounded() / 1000
        }
        let peakRSS = Double(ProcessMemory.peakResidentBytes() ?? 0) / 1_048_576
        if json {
            var obj: [String: Any] = [
                "mode": r.mode, "threads": r.threads, "params": r.params, "tokens_per_step": r.tokensPerStep,
                "tokens_per_s": (r.tokensPerSecond * 10).rounded() / 10, "step_ms": (r.secondsPerStep * 1e5).rounded() / 100,
                "step_cpu_ms": (r.cpuSecondsPerStep * 1e5).rounded() / 100,
                "gflops": (r.achievedFlops / 1e7).rounded() / 100, "sgemm_peak_gflops": (r.sgemmPeak / 1e7).rounded() / 100,
                "mfu": (r.mfu * 1e4).rounded() / 1e4, "flops_per_token": (r.flopsPerStep / Double(r.tokensPerStep)).rounded(),
                "peak_rss_mb": (peakRSS * 10).rounded() / 10, "baseline_rss_mb": (baselineRSS * 10).rounded() / 10,
                "model_rss_mb": ((peakRSS - baselineRSS) * 10).rounded() / 10,
                "blas_kernels": BLASEnvironment.kernels,
                "blas_thread_timeout": ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] ?? "",
                "theoretical_mb": (Double(budget.bytes) / 104_857.6).rounded() / 10,
                "budget_mb": (Double(budget.bytes) / 104_857.6).rounded() / 10,
                "state_mb": (Double(budget.stateBytes) / 104_857.6).rounded() / 10,
                "recompute": t.recompute.rawValue,
            ]
            obj.merge(extra) { a, _ in a }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for x in mode == .full ? [r] : [full, r].compactMap({ $0 }) {
                print(String(format: "mode %@ | threads %d | params %d | %.0f tokens/s | %.1f ms/step (%.1f ms CPU) | %.1f GFLOP/s of %.1f peak | MFU %.3f",
                             x.mode, threads, x.params, x.tokensPerSecond, x.secondsPerStep * 1000, x.cpuSecondsPerStep * 1000,
                             x.achievedFlops / 1e9, x.sgemmPeak / 1e9, x.mfu))
            }
            if let s = extra["speedup_vs_full"] { print("speedup vs full: \(s)×") }
            print(String(format: "peak RSS %.1f MB: %.1f MB before the model, %.1f MB since (theoretical %.1f MB)",
                         peakRSS, baselineRSS, peakRSS - baselineRSS, Double(budget.bytes) / 1_048_576))
        }
    }

    /// One worker's heads on frozen W: every head steps on its own batch, merged every T steps; and
    /// the bytes they need in principle, as the run itself holds them (its lanes, whether they fold).
    private func adapters(_ model: ModelConfig, _ t: TrainingConfig, _ lora: LoRAConfig) throws -> (StepBenchmark.Candidate, MemoryBudget) {
        let run = try ReplicaTrainer(
            mode: mode == .lora ? .lora : .lte, model: model, config: t, lora: lora, asWorker: true,
            makeSource: { RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: UInt64($0)) },
            validation: { RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: 9) })
        let tokens = t.batchSize * model.contextLength * lora.heads
        let candidate = StepBenchmark.Candidate(
            mode: mode.rawValue, params: run.main.model.layout.count, tokensPerStep: tokens,
            flopsPerStep: StepBenchmark.adapterFlops(model, lora: lora, tokens: tokens, seqLen: model.contextLength)) {
            _ = run.trainStep(iteration: $0)
        }
        return (candidate, run.memoryBudget!)
    }

    /// Forward pass and loss only, as evaluation and sampling run it.
    private func forwardOnly(_ model: ModelConfig, _ t: TrainingConfig) throws -> StepBenchmark.Candidate {
        let transformer = try Transformer(config: model, trainable: { _ in false })
        transformer.initialize(seed: t.seed)
        var source = RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: 1)
        let acts = Activations(config: model, batch: t.batchSize, seqLen: model.contextLength)
        // Kept for the process's lifetime, as the model is.
        let inputs = UnsafeMutablePointer<Int32>.allocate(capacity: acts.rows), targets = UnsafeMutablePointer<Int32>.allocate(capacity: acts.rows)
        return .init(mode: "forward", params: transformer.layout.count, tokensPerStep: acts.rows,
                     flopsPerStep: StepBenchmark.forwardFlops(model, tokens: acts.rows, seqLen: model.contextLength)) { _ in
            source.next(inputs: inputs, targets: targets)
            transformer.forward(acts, tokens: inputs, targets: targets, forTraining: false)
        }
    }

    /// The dense baseline: every mode reports against it, measured in the same process.
    private func fullRank(_ model: ModelConfig, _ t: TrainingConfig) throws -> StepBenchmark.Candidate {
        let transformer = try Transformer(config: model)
        transformer.initialize(seed: t.seed)
        let source = RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: 1)
        let trainer = Trainer(model: transformer, config: t, source: source, validation: { source })
        let tokens = t.batchSize * model.contextLength
        return .init(mode: "full", params: transformer.layout.count, tokensPerStep: tokens,
                     flopsPerStep: StepBenchmark.fullRankFlops(model, tokens: tokens, seqLen: model.contextLength)) {
            _ = trainer.trainStep(iteration: $0)
        }
    }
}
