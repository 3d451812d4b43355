import Foundation
import Prometheus

/// What `lte server --metrics` serves: the run's rounds in Prometheus text format, from the same
/// events and numbers as rounds.jsonl (a `RoundObserver` like `RoundsLog`, updated once a round's
/// answers are out, so a scrape that shows round k shows rounds.jsonl's line for round k). Times are
/// in seconds, Prometheus' base unit (rounds.jsonl has milliseconds).
///
/// Counters count from this server process's start (a restarted server starts them again at 0, as
/// Prometheus expects of a counter); `lte_round` and `lte_tokens` are the run's own numbers.
public final class ServerMetrics: RoundObserver {
    public let registry: PrometheusCollectorRegistry
    private let lock = NSLock()
    private var closed: [Int: ClosedRound] = [:]

    private let roundsCommitted, bytesIn, bytesOut: Counter
    private let round, tokens, headsMerged, trainLoss, learningRate: Gauge
    private let mergeSeconds, syncSeconds, roundSeconds, workerTrainSeconds, workerWaitSeconds: Gauge
    private let workersConnected, freeHeads: Gauge
    /// Exclusions counted by kind (`HeadUpdateScreen.kind`); each kind's series appears at its first.
    private var excluded: [String: Counter] = [:]

    /// Metrics for a server at `round` (resumed or new) whose run has seen `tokens` tokens.
    public init(round startRound: Int, tokens startTokens: Int) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "lte", metricName: name, unitName: "total", helpText: help))
        }
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "lte", metricName: name, unitName: unit, helpText: help))
        }
        roundsCommitted = counter("rounds_committed", "Rounds this server merged and committed to the history since it started.")
        bytesIn = counter("bytes_in", "Bytes of the pushes merged into rounds, as they crossed the wire.")
        bytesOut = counter("bytes_out", "Bytes of the round results sent to workers.")
        round = gauge("round", "", "The last merged round (round k is the k-th merge).")
        tokens = gauge("tokens", "", "Tokens seen by all heads since the run began.")
        headsMerged = gauge("round_heads_merged", "", "Heads merged in the last round.")
        trainLoss = gauge("train_loss", "", "Mean training loss of the heads merged in the last round.")
        learningRate = gauge("learning_rate", "", "Learning rate of the last round's last local step.")
        mergeSeconds = gauge("merge", "seconds", "The server's time to merge the last round.")
        syncSeconds = gauge("sync", "seconds", "The last round's merge plus the time to answer every worker.")
        roundSeconds = gauge("round_duration", "seconds", "Wall time from the round before's close to the last round's close.")
        workerTrainSeconds = gauge("worker_train", "seconds", "The longest local training among the last round's workers.")
        workerWaitSeconds = gauge("worker_wait", "seconds", "The longest wait for a merge the last round's workers reported.")
        workersConnected = gauge("workers_connected", "", "Workers holding heads (said hello and not left, vanished or revoked).")
        freeHeads = gauge("free_heads", "", "Heads no worker holds.")
        round.set(Double(startRound))
        tokens.set(Double(startTokens))
    }

    public func roundClosed(_ r: ClosedRound, commit: String) {
        lock.lock(); closed[r.round] = r; lock.unlock()
    }

    public func roundAnswered(_ number: Int, bytesOut sent: Int, syncSeconds sync: Double) {
        lock.lock(); defer { lock.unlock() }
        guard let r = closed.removeValue(forKey: number) else { return }
        roundsCommitted.increment()
        bytesIn.increment(by: Int64(r.bytesIn))
        bytesOut.increment(by: Int64(sent))
        round.set(Double(r.round))
        tokens.set(Double(r.tokens))
        headsMerged.set(Double(r.heads.count))
        trainLoss.set(r.meanLoss)
        learningRate.set(Double(r.learningRate))
        mergeSeconds.set(r.mergeSeconds)
        syncSeconds.set(r.mergeSeconds + sync)
        roundSeconds.set(r.roundSeconds)
        workerTrainSeconds.set(r.workerTrainSeconds)
        workerWaitSeconds.set(r.workerWaitSeconds)
        for e in r.excluded {
            let kind = HeadUpdateScreen.kind(ofReason: e.reason)
            if excluded[kind] == nil {
                excluded[kind] = registry.makeCounter(
                    descriptor: MetricNameDescriptor(namespace: "lte", metricName: "heads_excluded", unitName: "total",
                                                     helpText: "Heads pushed but left out of a round's merge, by the kind of reason."),
                    labels: [("reason", kind)])
            }
            excluded[kind]!.increment()
        }
    }

    /// The text a scrape gets, with the membership gauges read from `server` at this moment. Under
    /// the lock a round's update holds, so a scrape never shows half of one round and half of the next.
    public func render(reading server: ServerCore) -> String {
        let m = server.membershipCounts
        lock.lock(); defer { lock.unlock() }
        workersConnected.set(Double(m.workers))
        freeHeads.set(Double(m.freeHeads))
        return registry.emitToString()
    }
}

extension ServerCore {
    /// How many workers hold heads and how many heads are free, as of now (for the metrics).
    public var membershipCounts: (workers: Int, freeHeads: Int) {
        lock.lock(); defer { lock.unlock() }
        return (membership.workers.count, membership.freeHeads.count)
    }
}
