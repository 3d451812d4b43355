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
        discussion: "The worker takes the run's settings from the server; pass --config to have it refuse a server whose settings differ.")

    @Option(help: ArgumentHelp("Server address (tcp://, tls+tcp:// or ipc://).", valueName: "addr")) var server: String
    @Option(help: ArgumentHelp("Head ids this worker trains, comma-separated, e.g. 0,1.", valueName: "ids")) var heads: String
    @Option(help: ArgumentHelp("Prepared data directory (the same corpus the server's run uses).", valueName: "dir")) var data: String
    @Option(help: "Worker name in the history and logs (default: worker-<heads>).") var id: String?
    @Option(help: ArgumentHelp("The run config this worker expects; a server with different settings is refused.", valueName: "file"))
    var config: String?
    @Option(help: "Threads for OpenBLAS and the model's own loops.") var threads: Int = 1
    @Option(help: "Seconds to keep trying to reach the server.") var connectTimeout: Double = 60
    @OptionGroup var security: SecurityOptions

    func run() throws {
        try runReportingErrors {
            let ids = heads.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !ids.isEmpty, ids.allSatisfy({ $0 != nil && $0! >= 0 }) else {
                throw LTEError("--heads must be a comma-separated list of head ids, e.g. 0,1 (got \"\(heads)\")")
            }
            guard threads >= 1 else { throw LTEError("--threads must be at least 1") }
            if let id, !MergeHistory.isValidWorkerName(id) {
                throw LTEError("--id must be 1–\(MergeHistory.maxWorkerNameBytes) letters, digits, '.', '_' or '-' (got \(id.debugDescription)); it names the worker's branch in the history")
            }
            let dataset = try TokenDataset(directory: URL(fileURLWithPath: data))
            var fingerprint: Data?
            if let config {
                var cfg = try RunConfig.load(config)
                if cfg.vocabFromData { cfg.model.vocabSize = dataset.vocabSize }
                fingerprint = RunDescriptor(model: cfg.model, training: cfg.training, lte: cfg.lte, totalHeads: cfg.lte.heads, rounds: nil).fingerprint
            }
            BLASThreads.set(threads)
            Parallel.threads = threads
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
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a running server's round, the heads in and missing, and their losses.")

    @Argument(help: ArgumentHelp("Server address.", valueName: "addr")) var address: String
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 5
    @OptionGroup var security: SecurityOptions

    func run() throws {
        try runReportingErrors {
            let codec = try security.codec()
            let socket: NNGRequestSocket
            do {
                socket = try NNGRequestSocket(dial: address, maxMessageBytes: 1 << 20, sendTimeout: .milliseconds(Int(timeout * 1000)),
                                              receiveTimeout: .milliseconds(Int(timeout * 1000)), tls: try security.tls(for: address))
            } catch let e as NNGError { throw LTEError("cannot dial \(address): \(e.reason)") }
            defer { socket.close() }
            let reply: WireMessage
            do { reply = try codec.decode(try socket.request(try codec.encode(.statusRequest))) } catch let e as NNGError {
                throw LTEError("no answer from \(address) within \(timeout) s (\(e.reason)); is `lte server` running there?")
            }
            guard case .status(let s) = reply else { throw LTEError("the server answered with \(reply.type)") }
            let losses = zip(s.headsIn, s.lossesIn).map { String(format: "%d:%.4f", $0, $1) }.joined(separator: " ")
            // The last round as its workers lived it: longest local training, longest wait for a merge.
            let workers = s.fields["worker_train_ms"].map { " | worker train \($0) ms, wait \(s.fields["worker_wait_ms"] ?? "?") ms" } ?? ""
            print("round \(s.round)\(s.fields["rounds"].map { " of \($0)" } ?? "") | heads in [\(losses)] | missing \(s.headsMissing) | tokens \(s.fields["tokens"] ?? "?")\(workers)\(s.fields["finished"] == "true" ? " | finished" : "")")
        }
    }
}
