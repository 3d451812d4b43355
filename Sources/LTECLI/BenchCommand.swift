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
            let peak = SgemmPeak.measure()
            let transformer = try Transformer(config: model)
            transformer.initialize(seed: cfg.training.seed)
            let t = cfg.training
            let source = RandomBatches(batchSize: t.batchSize, contextLength: model.contextLength, vocabSize: model.vocabSize, seed: 1)
            let trainer = Trainer(model: transformer, config: t, source: source, validation: { source })
            let seconds = StepBenchmark.timeSteps(trainer, warmup: warmup, steps: steps)
            let tokens = t.batchSize * model.contextLength
            let r = StepBenchmark.Result(mode: "full", threads: threads, params: transformer.layout.count, tokensPerStep: tokens,
                                         secondsPerStep: seconds,
                                         flopsPerStep: StepBenchmark.fullRankFlops(model, tokens: tokens, seqLen: model.contextLength),
                                         sgemmPeak: peak)
            if json {
                let obj: [String: Any] = [
                    "mode": r.mode, "threads": r.threads, "params": r.params, "tokens_per_step": r.tokensPerStep,
                    "tokens_per_s": (r.tokensPerSecond * 10).rounded() / 10, "step_ms": (seconds * 1e5).rounded() / 100,
                    "gflops": (r.achievedFlops / 1e7).rounded() / 100, "sgemm_peak_gflops": (peak / 1e7).rounded() / 100,
                    "mfu": (r.mfu * 1e4).rounded() / 1e4,
                ]
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(String(format: "mode %@ | threads %d | params %d | %.0f tokens/s | %.1f ms/step | %.1f GFLOP/s of %.1f peak | MFU %.3f",
                             r.mode, threads, r.params, r.tokensPerSecond, seconds * 1000, r.achievedFlops / 1e9, peak / 1e9, r.mfu))
            }
        }
    }
}
