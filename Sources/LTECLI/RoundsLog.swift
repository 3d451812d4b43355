import Foundation
import LTECluster
import LTETraining

/// rounds.jsonl: one line per round, written once every worker of the round has been answered.
final class RoundsLog {
    let log: MetricsLog
    private var pending: [Int: ServerCore.ClosedRound] = [:]
    private let lock = NSLock()

    init(url: URL) throws { log = try MetricsLog(url: url) }

    func attach(to core: ServerCore) {
        let previous = core.record
        core.record = { [self] closed in
            lock.lock(); pending[closed.round] = closed; lock.unlock()
            return try previous(closed)
        }
        core.answered = { [self] round, bytesOut, sync in
            lock.lock(); let c = pending.removeValue(forKey: round); lock.unlock()
            guard let c else { return }
            let loss = c.heads.map { Double(c.losses[$0]!) }.reduce(0, +) / Double(max(1, c.heads.count))
            log.append([
                "round": .int(c.round), "heads": .ints(c.heads), "train_loss": .float(loss), "tokens": .int(c.tokens),
                "lr": .float(Double(c.learningRate)), "bytes_in": .int(c.bytesIn), "bytes_out": .int(bytesOut),
                "merge_ms": .float((c.mergeSeconds * 1e5).rounded() / 100), "sync_ms": .float(((c.mergeSeconds + sync) * 1e5).rounded() / 100),
                "round_ms": .float((c.roundSeconds * 1e5).rounded() / 100), "weights_hash": .string(c.weightsHash),
            ])
        }
    }
}
