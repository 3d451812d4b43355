import ArgumentParser
import Foundation
import LTEModel
import LTENumerics
import LTETraining

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure speed against this machine's sgemm peak.",
        subcommands: [BenchStep.self])
}

struct BenchStep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time training steps of a config's model and report tokens/s and MFU (model FLOPs/s ÷ measured sgemm peak).")

    @Option(help: "Config file (JSON) whose model and batch size are measured.") var config: String
    @Option(help: "Threads for OpenBLAS and the model's own loops.") var threads: Int = 1
    @Option(help: "full (dense AdamW step) or lte (one worker's heads on frozen W; also times full in the same run for the ratio).")
    var mode: String = "full"
    @Option(help: "LTE heads on the worker (lte mode; default: the config's lte.heads).") var heads: Int?
    @Option(help: "Timed steps (the median is reported).") var steps: Int = 20
    @Option(help: "Untimed warm-up steps.") var warmup: Int = 3
    @Option(help: "Override a config value, e.g. training.batch_size=16 (repeatable).") var set: [String] = []
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    func run() async throws {
        try await runReportingErrors {
            guard threads >= 1 else { throw LTEError("--threads must be at least 1") }
            guard steps >= 1, warmup >= 0 else { throw LTEError("--steps must be at least 1 and --warmup at least 0") }
            let cfg = try RunConfig.load(config, overrides: set)
            var model = cfg.model
            if cfg.vocabFromData { model.vocabSize = 256 }
            BLASThreads.set(threads)
            Parallel.threads = threads
            _ = SgemmPeak.measure(seconds: 0.3)   // warm OpenBLAS's buffers and the CPU clock
            let t = cfg.training
            let tokens = t.batchSize * model.contextLength
            let full = try measureFull(model, t)
            let peak = full.sgemmPeak
            var r = full
            var extra: [String: Any] = [:]
            switch mode {
            case "full": break
            case "lte", "lora":
                var lora = cfg.lte
                lora.heads = mode == "lora" ? 1 : (heads ?? lora.heads)
                let run = try ReplicaTrainer(
                    mode: mode == "lora" ? .lora : .lte, model: model, config: t, lora: lora,
                    makeSource: { RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: UInt64($0)) },
                    validation: { RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: 9) })
                let (seconds, lpeak) = StepBenchmark.timeSteps(run, warmup: warmup, steps: steps)
                r = StepBenchmark.Result(mode: mode, threads: threads, params: run.main.model.layout.count, tokensPerStep: tokens * lora.heads,
                                         secondsPerStep: seconds,
                                         flopsPerStep: StepBenchmark.adapterFlops(model, lora: lora, tokens: tokens * lora.heads, seqLen: model.contextLength),
                                         sgemmPeak: lpeak)
                extra = ["heads": lora.heads, "rank": lora.rank, "merge_every": lora.mergeEvery,
                         "full_tokens_per_s": (full.tokensPerSecond * 10).rounded() / 10,
                         "speedup_vs_full": (r.tokensPerSecond / full.tokensPerSecond * 1000).rounded() / 1000]
            default:
                throw LTEError("--mode must be full, lte or lora (got \(mode))")
            }
            let seconds = r.secondsPerStep
            if json {
                var obj: [String: Any] = [
                    "mode": r.mode, "threads": r.threads, "params": r.params, "tokens_per_step": r.tokensPerStep,
                    "tokens_per_s": (r.tokensPerSecond * 10).rounded() / 10, "step_ms": (seconds * 1e5).rounded() / 100,
                    "gflops": (r.achievedFlops / 1e7).rounded() / 100, "sgemm_peak_gflops": (peak / 1e7).rounded() / 100,
                    "mfu": (r.mfu * 1e4).rounded() / 1e4,
                ]
                obj.merge(extra) { a, _ in a }
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                for x in mode == "full" ? [r] : [full, r] {
                    print(String(format: "mode %@ | threads %d | params %d | %.0f tokens/s | %.1f ms/step | %.1f GFLOP/s of %.1f peak | MFU %.3f",
                                 x.mode, threads, x.params, x.tokensPerSecond, x.secondsPerStep * 1000, x.achievedFlops / 1e9, peak / 1e9, x.mfu))
                }
                if let s = extra["speedup_vs_full"] { print("speedup vs full: \(s)×") }
            }
        }
    }

    /// The dense baseline: every mode reports against it, measured in the same process.
    private func measureFull(_ model: ModelConfig, _ t: TrainingConfig) throws -> StepBenchmark.Result {
        let transformer = try Transformer(config: model)
        transformer.initialize(seed: t.seed)
        let source = RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: 1)
        let trainer = Trainer(model: transformer, config: t, source: source, validation: { source })
        let (seconds, peak) = StepBenchmark.timeSteps(trainer, warmup: warmup, steps: steps)
        let tokens = t.batchSize * model.contextLength
        return StepBenchmark.Result(mode: "full", threads: threads, params: transformer.layout.count, tokensPerStep: tokens,
                                    secondsPerStep: seconds,
                                    flopsPerStep: StepBenchmark.fullRankFlops(model, tokens: tokens, seqLen: model.contextLength),
                                    sgemmPeak: peak)
    }
}
