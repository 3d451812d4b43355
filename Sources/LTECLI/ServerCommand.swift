import ArgumentParser
import Foundation
import LTEBase
import LTECluster
import LTEData
import LTEModel
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

            Metrics: with --metrics HOST:PORT the server answers GET /metrics (Prometheus text format) with the rounds \
            committed, heads merged and left out, bytes in and out, worker train and wait times, merge, sync and round \
            times, the last training loss, the workers connected and the free heads.

            Examples:
              lte server --listen tcp://0.0.0.0:5555 --run runs/dist --config configs/shakespeare-char-baby.json --data data/shakespeare --heads 4 --rounds 100 --secret-file secret
              lte server --listen tcp://0.0.0.0:5555 --run runs/dist --config configs/shakespeare-char-baby.json --data data/shakespeare --from 3 --branch alt  # a new line of training from round 3
              lte server --listen tcp://0.0.0.0:5555 --run runs/dist --config configs/shakespeare-char-baby.json --data data/shakespeare --metrics 127.0.0.1:9464  # Prometheus scrapes /metrics
              lte server --listen tcp://0.0.0.0:5555 --run runs/dist --config configs/shakespeare-char-baby.json --data data/shakespeare --heads 4 --await-heads 4  # a fixed set of workers started by hand: every head merged from round 1
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
    @Option(help: ArgumentHelp("Close no round early before this many heads have been held at once (workers started together: every head from round 1); a round still closes at its quorum after --round-timeout. lte launch sets it to all its heads.", valueName: "n"))
    var awaitHeads: Int = 0
    @Option(help: "Requests in flight at once (must exceed the number of workers).") var concurrency: Int = 32
    @Option(help: ArgumentHelp("Leave out of a round's merge any head whose update is over R times the round's median update.", valueName: "R"))
    var maxUpdateRatio: Double = 100
    @Option(help: "Rounds between snapshot commits carrying the full weights (replay starts from the nearest).") var snapshotEvery: Int = 10
    @Option(help: ArgumentHelp("Start a new line of training from this past round (number, commit or tag) of the run's history.", valueName: "rev"))
    var from: String?
    @Option(help: ArgumentHelp("History branch this server appends to (needed with --from).", valueName: "name")) var branch: String = "main"
    @Option(help: "Seconds the last answers get to leave before the socket closes (raise it on slow links: an answer still in flight is lost).")
    var linger: Double = 0.3
    @Option(help: "Seconds a finished run waits for workers that missed its last round (a cut link) to fetch the final weights (default: --round-timeout).")
    var finalWait: Double?
    @Option(help: "Seconds a worker may go unheard (not waiting on a round) before its heads are handed on to other workers.")
    var leaseTimeout: Double = 120
    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 127.0.0.1:9464 (port 0: any free port).", valueName: "host:port"))
    var metrics: String?
    @OptionGroup var security: SecurityOptions

    func run() throws {
        let runtimeBytes = ProcessMemory.residentBytes()   // before any model: counted in the memory report
        // Everything is checked before anything is written: a refused start leaves the run as it was.
        if let rounds, rounds < 1 { throw LTEError("--rounds must be at least 1") }
        guard snapshotEvery >= 1 else { throw LTEError("--snapshot-every must be at least 1") }
        guard maxUpdateRatio >= 1 else { throw LTEError("--max-update-ratio must be at least 1 (got \(maxUpdateRatio))") }
        guard concurrency >= 2 else { throw LTEError("--concurrency must be at least 2 and exceed the number of workers (got \(concurrency))") }
        guard roundTimeout > 0, roundTimeout.isFinite else { throw LTEError("--round-timeout must be a positive number of seconds") }
        if let finalWait, !(finalWait >= 0 && finalWait.isFinite) { throw LTEError("--final-wait must be a number of seconds, 0 or more (got \(finalWait))") }
        if branch.contains("/") || branch.isEmpty { throw LTEError("--branch must be a plain name (got \"\(branch)\")") }
        try NetworkAddress.check(listen, flag: "--listen", listening: true)
        if let heads, heads < 1 { throw LTEError("--heads must be at least 1") }
        // --heads as an override, so the settings derived from lte.heads (RunConfig+Defaults) follow it.
        var cfg = try config.load(flags: heads.map { ["lte.heads=\($0)"] } ?? [])
        if !(0...cfg.lte.heads).contains(awaitHeads) {
            throw LTEError("--await-heads \(awaitHeads) must be between 0 and the run's \(cfg.lte.heads) heads")
        }
        if let quorum, !(1...cfg.lte.heads).contains(quorum) {
            throw LTEError("--quorum \(quorum) must be between 1 and the run's \(cfg.lte.heads) heads")
        }
        let dataset = try data.map { try TokenDataset(directory: URL(fileURLWithPath: $0)) }
        if cfg.vocabFromData {
            guard let dataset else { throw LTEError("config file \(config.file) has no model.vocab_size: pass --data DIR so the server can take it from the tokenizer") }
            cfg.model.vocabSize = dataset.vocabSize
        }
        if let rounds { cfg.rounds = rounds }
        if let r = cfg.rounds { cfg.training.iterations = r * cfg.lte.mergeEvery }
        guard leaseTimeout > 0 else { throw LTEError("--lease-timeout must be positive") }
        // Once RUN/keys holds a key, only those identities are admitted (`lte keys`).
        let identities: KeyStore? = KeyStore.isInUse(inRun: URL(fileURLWithPath: runDirectory))
            ? KeyStore(directory: KeyStore.location(inRun: URL(fileURLWithPath: runDirectory))) : nil
        let codec = try security.codec(verifier: identities)
        let tls = try security.tls(for: listen)
        let runURL = URL(fileURLWithPath: runDirectory)
        // Bound now, before anything is written: a taken or malformed --metrics address refuses the start.
        let metricsListener = try metrics.map { try MetricsListener(address: $0) }
        if let dataset { try Self.checkTokenizer(of: dataset, data: data!, againstHistoryIn: runURL, model: cfg.model) }
        try MemoryBudget.server(cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads)
            .requireAvailable(for: "the server of this model (\(formatCount(ParameterLayout(cfg.model).count)) parameters, \(cfg.lte.heads) heads)")
        BLASThreads.set(1)
        let main = try MainWeights(model: cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads, seed: cfg.training.seed)
        let options = ServerCore.Options(quorum: quorum ?? max(1, cfg.lte.heads - 1), roundTimeout: .milliseconds(Int(roundTimeout * 1000)),
                                         maxUpdateRatio: maxUpdateRatio, leaseTimeout: .milliseconds(Int(leaseTimeout * 1000)),
                                         identities: identities, finalWait: finalWait.map { .milliseconds(Int($0 * 1000)) },
                                         awaitHeads: awaitHeads)
        let tokenizer = data.flatMap { FileManager.default.contents(atPath: URL(fileURLWithPath: $0).appendingPathComponent("tokenizer.json").path) }
        do { try FileManager.default.createDirectory(at: runURL, withIntermediateDirectories: true) } catch {
            throw LTEError.posix("cannot create run directory \(runDirectory)", fallback: error)
        }
        let recorder = try HistoryRecorder.open(run: runURL, main: main, descriptor: cfg, configJSON: try cfg.encoded(),
                                                tokenizer: tokenizer, snapshotEvery: snapshotEvery, branch: branch, from: from, say: say)
        let roundsLog = try RoundsLog(url: runURL.appendingPathComponent(branch == "main" ? "rounds.jsonl" : "rounds-\(branch).jsonl"))
        // After the rounds log: a scrape that shows round k finds rounds.jsonl's line for k already written.
        let serverMetrics = metricsListener.map { _ in ServerMetrics(round: recorder.committedHead.round, tokens: recorder.committedHead.tokens) }
        let core = ServerCore(descriptor: cfg, options: options, main: main, runId: runURL.lastPathComponent,
                              committer: recorder, observers: [roundsLog] + (serverMetrics.map { [$0] } ?? []))
        // A history already past the run's last round has nothing to train: say so rather than stop
        // at once in silence. (At exactly its last round a restarted server still serves the end.)
        if let rounds = cfg.rounds, core.round > rounds {
            throw LTEError("run \(runDirectory) is already at round \(core.round), past its \(rounds) rounds (--rounds or run.rounds): pass --rounds above \(core.round) to train on")
        }
        let server = try ParameterServer(core: core, listen: listen, codec: codec, concurrency: concurrency, tls: tls)
        // Only now, with the history opened and the address bound, does the run take this config.
        do { try cfg.encoded().write(to: runURL.appendingPathComponent("config.json"), options: .atomic) } catch {
            throw LTEError.posix("cannot write \(runURL.appendingPathComponent("config.json").path)", fallback: error)
        }
        say("server: listening on \(listen) | \(cfg.lte.heads) heads, rank \(cfg.lte.rank), merge every \(cfg.lte.mergeEvery) steps | \(cfg.rounds.map { "\($0) rounds" } ?? "until stopped") | run \(runDirectory)\(identities.map { " | identities: \((try? $0.names().count) ?? 0) keys in \($0.directory.path)" } ?? "")")
        server.start()
        if let metricsListener, let serverMetrics {
            metricsListener.start { [core] in serverMetrics.render(reading: core) }
            say("server: metrics at http://\(metricsListener.boundAddress)/metrics")
        }
        let stop = StopSignal()
        while !core.waitUntilFinished(timeout: .milliseconds(500)) {
            if stop.received { say("server: stopping on signal"); break }
        }
        server.stop(linger: .milliseconds(Int(max(0, linger) * 1000)))
        metricsListener?.stop()
        if let failure = core.failure { throw LTEError("server stopped: \(failure)") }
        say("server: done after \(core.round) rounds | \(peakMemoryReport(.server(cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads), runtime: runtimeBytes))")
    }

    /// Data for a run that already has a history must use the tokenizer the history recorded: with
    /// the same vocabulary size but other ids, training would go on silently on garbled text.
    static func checkTokenizer(of dataset: TokenDataset, data: String, againstHistoryIn run: URL, model: ModelConfig) throws {
        let location = MergeHistory.location(inRun: run)
        guard FileManager.default.fileExists(atPath: location.path),
              let history = try? MergeHistory.open(at: location, modelConfig: model),
              let recorded = try? history.tokenizerData(at: "main"),
              let theirs = try? Tokenizers.decode(recorded, source: location.appendingPathComponent("tokenizer.json")) else { return }
        if let difference = Tokenizers.difference(theirs, dataset.tokenizer) {
            throw LTEError("--data \(data) was made with another tokenizer than the run \(run.path) (\(difference)); pass the data directory the run was started with")
        }
    }
}
