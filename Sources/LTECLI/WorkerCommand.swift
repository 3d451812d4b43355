import ArgumentParser
import Foundation
import LTEBase
import LTECluster
import LTEData
import LTENet
import LTEStore
import LTETraining

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run an LTE worker: train its heads T steps per round on their own shards, push, apply the merge.",
        discussion: """
            The worker takes the run's settings from the server; pass --config to have it refuse a server whose settings differ. \
            A worker that dies rejoins by itself when restarted, and reconnects when the server comes back.

            Examples:
              lte worker --server tcp://server:5555 --heads 0,1 --data data/shakespeare --secret-file secret
              lte worker --server tcp://server:5555 --heads 2,3 --data data/shakespeare --secret-file secret --config configs/shakespeare-char-baby.json --threads 2
            """)

    @Option(help: ArgumentHelp("Server address (tcp://, tls+tcp:// or ipc://).", valueName: "addr")) var server: String
    @Option(help: ArgumentHelp("Head ids this worker trains, comma-separated, e.g. 0,1.", valueName: "ids")) var heads: String
    @OptionGroup var data: DataOptions
    @Option(help: "Worker name in the history and logs (default: worker-<heads>).") var id: String?
    @Option(help: ArgumentHelp("The run config this worker expects; a server with different settings is refused.", valueName: "file"))
    var config: String?
    @OptionGroup var threads: ThreadOptions
    @Option(help: "Seconds to keep trying to reach the server.") var connectTimeout: Double = 60
    @OptionGroup var security: SecurityOptions

    func run() throws {
        let ids = heads.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ids.isEmpty, ids.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw LTEError("--heads must be a comma-separated list of head ids, e.g. 0,1 (got \"\(heads)\")")
        }
        if let id, !MergeHistory.isValidWorkerName(id) {
            throw LTEError("--id must be 1–\(MergeHistory.maxWorkerNameBytes) letters, digits, '.', '_' or '-' (got \(id.debugDescription)); it names the worker's branch in the history")
        }
        let dataset = try data.load()
        var fingerprint: Data?
        if let config {
            var cfg = try RunConfig.load(contentsOf: config)
            if cfg.vocabFromData { cfg.model.vocabSize = dataset.vocabSize }
            fingerprint = cfg.fingerprint
        }
        threads.apply()
        var options = WorkerRuntime.Options(server: server, id: id ?? "worker-" + ids.map { String($0!) }.joined(separator: "-"),
                                            heads: ids.map { $0! }, data: dataset, fingerprint: fingerprint)
        options.connectTimeout = .milliseconds(Int(connectTimeout * 1000))
        options.tls = try security.tls(for: server)
        let worker = try WorkerRuntime(options: options, codec: try security.codec())
        let hash = try worker.run()
        say("\(options.id): done at round \(worker.round) | weights \(hash)")
        if let budget = worker.memoryBudget { say("\(options.id): \(peakMemoryReport(budget))") }
    }
}
