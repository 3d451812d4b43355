import ArgumentParser
import Foundation
import LTEBase
import LTECluster
import LTEData
import LTENet
import LTENumerics
import LTEStore
import LTETraining

struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the parameter server: collect each round's heads, merge them into the main weights, answer every worker.",
        discussion: """
            Writes RUN/rounds.jsonl (one line per round), RUN/config.json and the merge history RUN/history.git; \
            started on an existing history, it resumes at its head. Workers join with `lte worker --server ADDR`.

            Identities: when RUN/keys holds keys (`lte keys add --run RUN NAME`), only those workers are admitted, each \
            signing its messages with its own key; each head is bound to the worker it was given to, and \
            `lte keys revoke --run RUN NAME` takes effect from that worker's next message.

            Examples:
              lte server --listen tcp://0.0.0.0:5555 --run runs/dist --config configs/shakespeare-char-baby.json --data data/shakespeare --heads 4 --rounds 100 --secret-file secret
              lte server --listen tcp://0.0.0.0:5555 --run runs/dist --config configs/shakespeare-char-baby.json --data data/shakespeare --from 3 --branch alt  # a new line of training from round 3
            """)

    @Option(help: ArgumentHelp("Address to listen on: tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///path.", valueName: "addr"))
    var listen: String
    @Option(name: .customLong("run"), help: ArgumentHelp("Run directory (created if missing).", valueName: "dir")) var runDirectory: String
    @OptionGroup var config: RunConfigOptions
    @Option(help: "Rounds to run before stopping (default: the config's run.rounds, else until stopped).") var rounds: Int?
    @Option(help: "Total LTE heads the run expects (default: the config's lte.heads).") var heads: Int?
    @Option(help: ArgumentHelp("Prepared data directory, to take vocab_size from its tokenizer when the config has none.", valueName: "dir"))
    var data: String?
    @Option(help: "Seconds a round waits for missing heads once it has a quorum.") var roundTimeout: Double = 60
    @Option(help: "Heads needed to close a round at the timeout (default: all but one, at least 1).") var quorum: Int?
    @Option(help: "Requests in flight at once (must exceed the number of workers).") var concurrency: Int = 32
    @Option(help: "Rounds between snapshot commits carrying the full weights (replay starts from the nearest).") var snapshotEvery: Int = 10
    @Option(help: ArgumentHelp("Start a new line of training from this past round (number, commit or tag) of the run's history.", valueName: "rev"))
    var from: String?
    @Option(help: ArgumentHelp("History branch this server appends to (needed with --from).", valueName: "name")) var branch: String = "main"
    @Option(help: "Seconds a worker may go unheard (not waiting on a round) before its heads are handed on to other workers.")
    var leaseTimeout: Double = 120
    @OptionGroup var security: SecurityOptions

    func run() throws {
        if let rounds, rounds < 1 { throw LTEError("--rounds must be at least 1") }
        var cfg = try config.load()
        if let heads { cfg.lte.heads = heads }
        guard cfg.lte.heads >= 1 else { throw LTEError("--heads must be at least 1") }
        if cfg.vocabFromData {
            guard let data else { throw LTEError("config file \(config.file) has no model.vocab_size: pass --data DIR so the server can take it from the tokenizer") }
            cfg.model.vocabSize = try TokenDataset(directory: URL(fileURLWithPath: data)).vocabSize
        }
        if let rounds { cfg.rounds = rounds }
        if let r = cfg.rounds { cfg.training.iterations = r * cfg.lte.mergeEvery }
        if branch.contains("/") || branch.isEmpty { throw LTEError("--branch must be a plain name (got \"\(branch)\")") }
        let runURL = URL(fileURLWithPath: runDirectory)
        try FileManager.default.createDirectory(at: runURL, withIntermediateDirectories: true)
        try cfg.encoded().write(to: runURL.appendingPathComponent("config.json"))
        BLASThreads.set(1)
        let main = try MainWeights(model: cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads, seed: cfg.training.seed)
        guard leaseTimeout > 0 else { throw LTEError("--lease-timeout must be positive") }
        let keys = KeyStore(directory: KeyStore.location(inRun: runURL))
        let identities: KeyStore? = KeyStore.isInUse(inRun: runURL) ? keys : nil
        let options = ServerCore.Options(quorum: quorum ?? max(1, cfg.lte.heads - 1), roundTimeout: .milliseconds(Int(roundTimeout * 1000)),
                                         leaseTimeout: .milliseconds(Int(leaseTimeout * 1000)), identities: identities)
        guard snapshotEvery >= 1 else { throw LTEError("--snapshot-every must be at least 1") }
        let tokenizer = data.flatMap { FileManager.default.contents(atPath: URL(fileURLWithPath: $0).appendingPathComponent("tokenizer.json").path) }
        let recorder = try HistoryRecorder.open(run: runURL, main: main, descriptor: cfg, configJSON: try cfg.encoded(),
                                                tokenizer: tokenizer, snapshotEvery: snapshotEvery, branch: branch, from: from, say: say)
        let roundsLog = try RoundsLog(url: runURL.appendingPathComponent(branch == "main" ? "rounds.jsonl" : "rounds-\(branch).jsonl"))
        let core = ServerCore(descriptor: cfg, options: options, main: main, runId: runURL.lastPathComponent,
                              committer: recorder, observers: [roundsLog])
        let server = try ParameterServer(core: core, listen: listen, codec: try security.codec(verifier: identities), concurrency: concurrency,
                                         tls: try security.tls(for: listen))
        say("server: listening on \(listen) | \(cfg.lte.heads) heads, rank \(cfg.lte.rank), merge every \(cfg.lte.mergeEvery) steps | \(cfg.rounds.map { "\($0) rounds" } ?? "until stopped") | run \(runDirectory)\(identities.map { " | identities: \((try? $0.names().count) ?? 0) keys in \($0.directory.path)" } ?? "")")
        server.start()
        let stop = StopSignal()
        while !core.waitUntilFinished(timeout: .milliseconds(500)) {
            if stop.received { say("server: stopping on signal"); break }
        }
        server.stop()
        if let failure = core.failure { throw LTEError("server stopped: \(failure)") }
        say("server: done after \(core.round) rounds | \(peakMemoryReport(.server(cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads)))")
    }
}
