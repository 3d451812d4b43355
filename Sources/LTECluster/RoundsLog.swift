import Foundation
import LTETraining

/// rounds.jsonl: one line per round, written once every worker of the round has been answered, so
/// it holds the round's bytes out and sync time as well as what the merge recorded. The server's
/// own times (merge_ms, sync_ms, round_ms) sit beside the workers' (worker_train_ms, this round's
/// longest local training; worker_wait_ms, the longest wait reported for the round before's merge).
public final class RoundsLog: RoundObserver {
    let log: MetricsLog
    private var closed: [Int: ClosedRound] = [:]
    private let lock = NSLock()

    public init(url: URL) throws { log = try MetricsLog(url: url) }

    public func roundClosed(_ round: ClosedRound, commit: String) {
        lock.lock(); closed[round.round] = round; lock.unlock()
    }

    public func roundAnswered(_ round: Int, bytesOut: Int, syncSeconds: Double) {
        lock.lock(); let c = closed.removeValue(forKey: round); lock.unlock()
        guard let c else { return }
        log.append([
            "round": .int(c.round), "heads": .ints(c.heads), "train_loss": .float(c.meanLoss), "tokens": .int(c.tokens),
            "lr": .float(Double(c.learningRate)), "bytes_in": .int(c.bytesIn), "bytes_out": .int(bytesOut),
            "merge_ms": .float((c.mergeSeconds * 1e5).rounded() / 100), "sync_ms": .float(((c.mergeSeconds + syncSeconds) * 1e5).rounded() / 100),
            "round_ms": .float((c.roundSeconds * 1e5).rounded() / 100), "weights_hash": .string(c.weightsHash.hex),
            "worker_train_ms": .float((c.workerTrainSeconds * 1e5).rounded() / 100),
            "worker_wait_ms": .float((c.workerWaitSeconds * 1e5).rounded() / 100),
        ])
    }
}
