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
        public var flopsPerStep: Double
        public var sgemmPeak: Double
        public var tokensPerSecond: Double { Double(tokensPerStep) / secondsPerStep }
        public var achievedFlops: Double { flopsPerStep / secondsPerStep }
        public var mfu: Double { achievedFlops / sgemmPeak }

        public init(mode: String, threads: Int, params: Int, tokensPerStep: Int, secondsPerStep: Double, flopsPerStep: Double, sgemmPeak: Double) {
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

    /// Runs `warmup` untimed then `steps` timed steps of `run`; the median step time is reported so
    /// one descheduled step does not skew the figure.
    public static func timeSteps(_ run: TrainingRun, warmup: Int, steps: Int) -> Double {
        for i in 0..<warmup { _ = run.trainStep(iteration: i) }
        let clock = ContinuousClock()
        var times: [Double] = []
        for i in 0..<steps {
            let t0 = clock.now
            _ = run.trainStep(iteration: warmup + i)
            times.append((clock.now - t0).seconds)
        }
        times.sort()
        return times[times.count / 2]
    }
}
