import ArgumentParser
import Foundation
import LTEBase
import LTECluster
import LTEData
import LTENet
import LTENumerics
import LTEStore
import LTETraining

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run an LTE worker: train its heads T steps per round on their own shards, push, apply the merge.",
        discussion: """
            The worker takes the run's settings from the server; pass --config to have it refuse a server whose settings differ. \
            A worker that dies rejoins by itself when restarted, and reconnects when the server comes back. \
            Once it has joined, it waits out an unreachable server (a cut link, a restart) for --reconnect-timeout \
            seconds, with a log line every few seconds.

            Examples:
              lte worker --server tcp://server:5555 --heads 0,1 --data data/shakespeare --secret-file secret
              lte worker --server tcp://server:5555 --heads 2,3 --data data/shakespeare --secret-file secret --config configs/shakespeare-char-baby.json --threads 2
              lte worker --server tcp://server:5555 --heads auto --max-heads 2 --data data/shakespeare --key runs/dist/keys/alice.key
              lte worker --server tcp://server:5555 --heads 0 --data data/shakespeare --secret-file secret --reconnect-timeout 900

            With --heads auto the server hands the worker free heads. SIGTERM, Ctrl-C or --rounds make it leave \
            cleanly at the next round boundary: its heads' factors and optimizer moments go to the server, and the \
            next worker to take them continues them exactly. A worker that vanishes loses its heads after the \
            server's --lease-timeout; they are handed on with their last-merge factors and fresh optimizer moments.
            """)

    @Option(help: ArgumentHelp("Server address (tcp://, tls+tcp:// or ipc://).", valueName: "addr")) var server: String
    @Option(help: ArgumentHelp("Head ids this worker trains, comma-separated, e.g. 0,1; or `auto`: free heads the server hands out.", valueName: "ids|auto"))
    var heads: String
    @Option(help: "With --heads auto: the most heads to take.") var maxHeads: Int = 1
    @Option(help: "Rounds to train before leaving cleanly (default: to the run's end).") var rounds: Int?
    @Option(help: ArgumentHelp("This worker's identity key (from `lte keys add`); its name is the worker's name.", valueName: "file"))
    var key: String?
    @OptionGroup var data: DataOptions
    @Option(help: "Worker name in the history and logs (default: worker-<heads>).") var id: String?
    @Option(help: ArgumentHelp("The run config this worker expects; a server with different settings is refused.", valueName: "file"))
    var config: String?
    @OptionGroup var threads: ThreadOptions
    @Option(help: "Seconds to keep trying to reach the server before joining the run.") var connectTimeout: Double = 60
    @Option(help: "Once joined: seconds the server may stay unreachable, or a request unanswered, before the worker gives up (outlasts a link cut or a server restart).")
    var reconnectTimeout: Double = 300
    @OptionGroup var security: SecurityOptions

    func run() throws {
        let runtimeBytes = ProcessMemory.residentBytes()   // before any model: counted in the memory report
        let auto = heads == "auto"
        let ids = auto ? [] : heads.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard auto || (!ids.isEmpty && ids.allSatisfy({ $0 != nil && $0! >= 0 })) else {
            throw LTEError("--heads must be a comma-separated list of head ids, e.g. 0,1, or auto (got \"\(heads)\")")
        }
        guard maxHeads >= 1 else { throw LTEError("--max-heads must be at least 1") }
        if let rounds, rounds < 1 { throw LTEError("--rounds must be at least 1") }
        for (flag, seconds) in [("--connect-timeout", connectTimeout), ("--reconnect-timeout", reconnectTimeout)] {
            guard seconds > 0, seconds.isFinite else { throw LTEError("\(flag) must be a positive number of seconds (got \(seconds))") }
        }
        let signer = try key.map { try IdentityKey.load(contentsOf: $0) }
        // A key's file name is its identity: runs/x/keys/alice.key speaks for alice.
        let keyName = key.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
        if let keyName, let id, id != keyName { throw LTEError("--id \(id) differs from the key's identity \(keyName) (the key file's name)") }
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
        let defaultName = auto ? "worker-\(ProcessInfo.processInfo.hostName.filter { $0.isLetter || $0.isNumber || $0 == "-" }.prefix(40))-\(getpid())"
                               : "worker-" + ids.map { String($0!) }.joined(separator: "-")
        var options = WorkerRuntime.Options(server: server, id: keyName ?? id ?? defaultName,
                                            heads: ids.map { $0! }, data: dataset, fingerprint: fingerprint)
        options.maxHeads = auto ? maxHeads : 0
        options.rounds = rounds
        options.connectTimeout = .milliseconds(Int(connectTimeout * 1000))
        options.reconnectTimeout = .milliseconds(Int(reconnectTimeout * 1000))
        options.tls = try security.tls(for: server)
        let worker = try WorkerRuntime(options: options, codec: try security.codec(signer: signer))
        let stop = StopSignal()
        let hash = try worker.run(shouldStop: { stop.received })
        say("\(options.id): done at round \(worker.round) with heads \(worker.heads) | weights \(hash)")
        if let budget = worker.memoryBudget { say("\(options.id): \(peakMemoryReport(budget, runtime: runtimeBytes))") }
    }
}
