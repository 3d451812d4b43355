import Foundation
import LTEBase
import LTENumerics

/// The loop around any `TrainingRun`: steps, a progress line, periodic validation, `metrics.jsonl`,
/// and a checkpoint hook. It knows nothing of files beyond the metrics log: saving is the caller's.
public struct TrainingLoop {
    public let config: TrainingConfig
    public let metrics: MetricsLog?
    public var progress: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(config: TrainingConfig, metrics: MetricsLog?) {
        self.config = config
        self.metrics = metrics
    }

    /// Runs iterations `start..<config.iterations`; `checkpoint(nextIteration)` is called every
    /// `checkpointInterval` steps and at the end. Returns the last validation loss. When
    /// `shouldStop()` turns true (Ctrl-C), the step under way ends, a checkpoint is saved, and
    /// `TrainingStopped` is thrown: the run can resume from exactly there.
    @discardableResult
    public func run(_ run: TrainingRun, from start: Int = 0, shouldStop: () -> Bool = { false },
                    checkpoint: (Int) throws -> Void = { _ in }) throws -> Float? {
        let total = config.iterations
        let clock = ContinuousClock()
        let began = clock.now
        var windowStart = clock.now, windowTokens = run.tokensSeen
        var lossSum = 0.0, lossCount = 0
        var lastVal: Float?
        for it in start..<total {
            let loss = run.trainStep(iteration: it)
            guard loss.isFinite else { throw LTEError("training diverged at step \(it + 1): loss is \(loss); lower the learning rate") }
            lossSum += Double(loss); lossCount += 1
            let step = it + 1
            let logNow = step % max(1, config.logInterval) == 0 || step == total
            let evalNow = config.evalInterval > 0 && (step % config.evalInterval == 0 || step == total)
            var val: Float?
            if evalNow { val = run.validationLoss(); lastVal = val }
            if logNow || evalNow {
                let now = clock.now
                let seconds = (now - windowStart).seconds
                let tps = seconds > 0 ? Double(run.tokensSeen - windowTokens) / seconds : 0
                let trainLoss = lossSum / Double(max(1, lossCount))
                metrics?.append([
                    "step": .int(step), "tokens": .int(run.tokensSeen), "train_loss": .float(trainLoss),
                    "val_loss": val.map { .float(Double($0)) }, "lr": .float(Double(run.learningRate)),
                    "bytes": .int(run.bytesCommunicated), "tokens_per_s": .float(tps.rounded()),
                    "elapsed_s": .float(((now - began).seconds * 100).rounded() / 100),
                ])
                let eta = tps > 0 ? Double(total - step) * Double(run.tokensSeen - windowTokens) / Double(max(1, lossCount)) / tps : 0
                var line = String(format: "step %5d/%d | loss %.4f", step, total, trainLoss)
                if let val { line += String(format: " | val %.4f", val) }
                line += String(format: " | lr %.2e | %6.0f tok/s | ETA %@", run.learningRate, tps, formatDuration(eta))
                progress(line)
                windowStart = clock.now; windowTokens = run.tokensSeen
                lossSum = 0; lossCount = 0
            }
            let stopping = step < total && shouldStop()
            if stopping || step == total || (config.checkpointInterval > 0 && step % config.checkpointInterval == 0) {
                try checkpoint(step)
            }
            if stopping { throw TrainingStopped(step: step) }
        }
        return lastVal
    }
}

/// A run stopped on request (`TrainingLoop.run`'s `shouldStop`) after `step` steps, checkpointed there.
public struct TrainingStopped: Error {
    public let step: Int
}

extension Duration {
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

public func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
}
