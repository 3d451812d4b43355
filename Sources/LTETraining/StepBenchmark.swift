import Foundation
import LTEModel
import LTENumerics

/// Times training steps of a model and relates them to the sgemm peak measured in the same run.
public struct StepBenchmark {
    public struct Result: Sendable {
        public var mode: String
        public var threads: Int
        public var params: Int
        public var tokensPerStep: Int
        public var secondsPerStep: Double
        public var cpuSecondsPerStep: Double
        public var flopsPerStep: Double
        public var sgemmPeak: Double
        public var tokensPerSecond: Double { Double(tokensPerStep) / secondsPerStep }
        public var achievedFlops: Double { flopsPerStep / secondsPerStep }
        public var mfu: Double { achievedFlops / sgemmPeak }

        public init(mode: String, threads: Int, params: Int, tokensPerStep: Int, secondsPerStep: Double, cpuSecondsPerStep: Double,
                    flopsPerStep: Double, sgemmPeak: Double) {
            self.cpuSecondsPerStep = cpuSecondsPerStep
            self.mode = mode; self.threads = threads; self.params = params; self.tokensPerStep = tokensPerStep
            self.secondsPerStep = secondsPerStep; self.flopsPerStep = flopsPerStep; self.sgemmPeak = sgemmPeak
        }
    }

    /// Model FLOPs of one full-rank training step: 6·P per token for the matrix products (forward 2P,
    /// backward 4P) plus attention's 12·L·D·T per token (QKᵀ and PV, forward and backward).
    public static func fullRankFlops(_ c: ModelConfig, tokens: Int, seqLen: Int) -> Double {
        let p = Double(ParameterLayout(c).matmulParameterCount)
        return Double(tokens) * (6 * p + 12 * Double(c.layers) * Double(c.dim) * Double(seqLen))
    }

    /// Runs `warmup` untimed then `steps` timed steps of `run`, each followed by one timed sgemm, and
    /// returns the median step time, the median CPU time of a step (all threads; on a busy machine
    /// it tracks the work done better than wall time, which also counts time spent descheduled) and the
    /// median sgemm rate. Interleaving puts the step and the peak it is divided by under the same
    /// conditions (another process on the machine slows both).
    public static func timeSteps(_ run: TrainingRun, warmup: Int, steps: Int) -> (seconds: Double, cpuSeconds: Double, peak: Double) {
        timeSteps(warmup: warmup, steps: steps) { _ = run.trainStep(iteration: $0) }
    }

    public static func timeSteps(warmup: Int, steps: Int, _ step: (Int) -> Void) -> (seconds: Double, cpuSeconds: Double, peak: Double) {
        for i in 0..<warmup { step(i) }
        let clock = ContinuousClock()
        var times: [Double] = [], cpu: [Double] = [], peaks: [Double] = []
        for i in 0..<steps {
            let t0 = clock.now, c0 = processCPUSeconds()
            step(warmup + i)
            times.append((clock.now - t0).seconds)
            cpu.append(processCPUSeconds() - c0)
            peaks.append(SgemmPeak.sample())
        }
        times.sort(); cpu.sort(); peaks.sort()
        return (times[times.count / 2], cpu[cpu.count / 2], peaks[peaks.count / 2])
    }

    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// Model FLOPs of a forward pass: 2·P per token for the products and attention's 4·L·D·T.
    public static func forwardFlops(_ c: ModelConfig, tokens: Int, seqLen: Int) -> Double {
        let p = Double(ParameterLayout(c).matmulParameterCount)
        return Double(tokens) * (2 * p + 4 * Double(c.layers) * Double(c.dim) * Double(seqLen))
    }
}

extension StepBenchmark {
    /// Model FLOPs of one LTE/LoRA step with W frozen: forward 2·P and input gradients 2·P per token
    /// (no dW), the adapters' own products 6·r·(n + m) per wrapped layer per token (forward u = xAᵀ
    /// and uBᵀ; backward dyB, dB, dA, dx), and attention. The correction term's products are overhead
    /// of the method, not model FLOPs, and are not counted.
    public static func adapterFlops(_ c: ModelConfig, lora: LoRAConfig, tokens: Int, seqLen: Int) -> Double {
        let layout = ParameterLayout(c)
        let sites = LoRALayout(model: c, layout: layout, rank: lora.rank, wrapLMHead: lora.wrapLMHead)
        let frozenP = Double(layout.matmulParameterCount)
        let adapter = sites.sites.reduce(0.0) { $0 + 6 * Double(lora.rank) * Double($1.inFeatures + $1.outFeatures) }
        // lm_head trains densely when it is not wrapped: its dW (2·V·D per token) is real work.
        let lmHeadDW = lora.wrapLMHead ? 0 : 2 * Double(c.vocabSize * c.dim)
        return Double(tokens) * (4 * frozenP + adapter + lmHeadDW + 12 * Double(c.layers) * Double(c.dim) * Double(seqLen))
    }
}
