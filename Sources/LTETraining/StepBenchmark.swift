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

    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// A step to time: what it is, and its model FLOPs.
    public struct Candidate {
        public var mode: String, params: Int, tokensPerStep: Int, flopsPerStep: Double
        public var step: (Int) -> Void
        public init(mode: String, params: Int, tokensPerStep: Int, flopsPerStep: Double, step: @escaping (Int) -> Void) {
            self.mode = mode; self.params = params; self.tokensPerStep = tokensPerStep; self.flopsPerStep = flopsPerStep; self.step = step
        }
    }

    /// Times several candidates in turn, step by step (a, b, a, b, …, each step followed by one sgemm
    /// sample), so that their ratio holds even when the machine's speed drifts during the run.
    public static func time(_ candidates: [Candidate], threads: Int, warmup: Int, steps: Int) -> [Result] {
        for i in 0..<warmup { for c in candidates { c.step(i) } }
        let clock = ContinuousClock()
        var times = candidates.map { _ in [Double]() }, cpu = times, peaks = times
        for i in 0..<steps {
            for (k, c) in candidates.enumerated() {
                let t0 = clock.now, c0 = processCPUSeconds()
                c.step(warmup + i)
                times[k].append((clock.now - t0).seconds)
                cpu[k].append(processCPUSeconds() - c0)
                peaks[k].append(SgemmPeak.sample())
            }
        }
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        return candidates.enumerated().map { k, c in
            Result(mode: c.mode, threads: threads, params: c.params, tokensPerStep: c.tokensPerStep, secondsPerStep: median(times[k]),
                   cpuSecondsPerStep: median(cpu[k]), flopsPerStep: c.flopsPerStep, sgemmPeak: median(peaks[k]))
        }
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
    /// and uBᵀ; backward dyB, dB, dA, dx), and attention. uBᵀ and dx count although a lane folds them
    /// into W's products (HeadLanes); the correction term's products are overhead of the method, not
    /// model FLOPs, and are not counted.
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
