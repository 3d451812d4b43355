import ArgumentParser
import Foundation
import LTEBase
import LTECluster
import LTEData
import LTENet
import LTENumerics
import LTEStore
import LTETraining

/// Options every networked command shares: authentication and TLS.
struct SecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Shared secret file (hex or raw, ≥ 16 bytes): every message is HMAC-SHA256 authenticated.", valueName: "file"))
    var secretFile: String?
    @Option(help: ArgumentHelp("TLS certificate (PEM) for tls+tcp:// addresses.", valueName: "file")) var tlsCert: String?
    @Option(help: ArgumentHelp("TLS private key (PEM).", valueName: "file")) var tlsKey: String?
    @Option(help: ArgumentHelp("TLS CA certificate (PEM) that peers must be signed by.", valueName: "file")) var tlsCa: String?

    func codec(maxMessageBytes: Int = 1 << 30) throws -> WireCodec {
        WireCodec(secret: try secretFile.map { try SharedSecret.load(contentsOf: $0) }, maxMessageBytes: maxMessageBytes)
    }

    func tls(for address: String) throws -> TLSOptions? {
        guard address.hasPrefix("tls+tcp://") else {
            if tlsCert != nil || tlsKey != nil || tlsCa != nil { throw LTEError("--tls-cert/--tls-key/--tls-ca need a tls+tcp:// address (got \(address))") }
            return nil
        }
        guard let tlsCert, let tlsKey, let tlsCa else { throw LTEError("a tls+tcp:// address needs --tls-cert, --tls-key and --tls-ca") }
        return TLSOptions(certFile: tlsCert, keyFile: tlsKey, caFile: tlsCa)
    }
}

struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the parameter server: collect each round's heads, merge them into the main weights, answer every worker.",
        discussion: "Writes RUN/rounds.jsonl (one line per round) and RUN/config.json. Workers join with `lte worker --server ADDR`.")

    @Option(help: ArgumentHelp("Address to listen on: tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///path.", valueName: "addr"))
    var listen: String
    @Option(name: .customLong("run"), help: ArgumentHelp("Run directory (created if missing).", valueName: "dir")) var runDirectory: String
    @Option(help: ArgumentHelp("Run config (JSON): model, training and lte sections.", valueName: "file")) var config: String
    @Option(help: "Rounds to run before stopping (default: until stopped).") var rounds: Int?
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
    @Option(help: ArgumentHelp("Override a config value, e.g. lte.merge_every=5 (repeatable).", valueName: "section.key=value"))
    var set: [String] = []
    @Option(help: "Seconds the last answers get to leave before the socket closes (raise it on slow links: an answer still in flight is lost).")
    var linger: Double = 0.3
    @OptionGroup var security: SecurityOptions

    func run() throws {
        try runReportingErrors {
            if let rounds, rounds < 1 { throw LTEError("--rounds must be at least 1") }
            var cfg = try RunConfig.load(config, overrides: set)
            if let heads { cfg.lte.heads = heads }
            guard cfg.lte.heads >= 1 else { throw LTEError("--heads must be at least 1") }
            if cfg.vocabFromData {
                guard let data else { throw LTEError("config file \(config) has no model.vocab_size: pass --data DIR so the server can take it from the tokenizer") }
                cfg.model.vocabSize = try TokenDataset(directory: URL(fileURLWithPath: data)).vocabSize
            }
            if let r = rounds { cfg.training.iterations = r * cfg.lte.mergeEvery }
            if branch.contains("/") || branch.isEmpty { throw LTEError("--branch must be a plain name (got \"\(branch)\")") }
            let descriptor = RunDescriptor(model: cfg.model, training: cfg.training, lte: cfg.lte, totalHeads: cfg.lte.heads, rounds: rounds)
            let runURL = URL(fileURLWithPath: runDirectory)
            try FileManager.default.createDirectory(at: runURL, withIntermediateDirectories: true)
            try cfg.effectiveJSON().write(to: runURL.appendingPathComponent("config.json"))
            BLASThreads.set(1)
            let main = try MainWeights(model: cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads, seed: cfg.training.seed)
            let options = ServerCore.Options(quorum: quorum ?? max(1, cfg.lte.heads - 1), roundTimeout: .milliseconds(Int(roundTimeout * 1000)))
            guard snapshotEvery >= 1 else { throw LTEError("--snapshot-every must be at least 1") }
            let tokenizer = data.flatMap { FileManager.default.contents(atPath: URL(fileURLWithPath: $0).appendingPathComponent("tokenizer.json").path) }
            let recorder = try HistoryRecorder.open(run: runURL, main: main, descriptor: descriptor, configJSON: try cfg.effectiveJSON(),
                                                    tokenizer: tokenizer, snapshotEvery: snapshotEvery, branch: branch, from: from, say: say)
            let roundsLog = try RoundsLog(url: runURL.appendingPathComponent(branch == "main" ? "rounds.jsonl" : "rounds-\(branch).jsonl"))
            let core = ServerCore(descriptor: descriptor, options: options, main: main, runId: runURL.lastPathComponent,
                                  committer: recorder, observers: [roundsLog])
            let server = try ParameterServer(core: core, listen: listen, codec: try security.codec(), concurrency: concurrency,
                                             tls: try security.tls(for: listen))
            say("server: listening on \(listen) | \(cfg.lte.heads) heads, rank \(cfg.lte.rank), merge every \(cfg.lte.mergeEvery) steps | \(self.rounds.map { "\($0) rounds" } ?? "until stopped") | run \(runDirectory)")
            server.start()
            let stop = StopSignal()
            while !core.waitUntilFinished(timeout: .milliseconds(500)) {
                if stop.received { say("server: stopping on signal"); break }
            }
            server.stop(linger: .milliseconds(Int(max(0, linger) * 1000)))
            if let failure = core.failure { throw LTEError("server stopped: \(failure)") }
            say("server: done after \(core.round) rounds | \(peakMemoryReport(.server(cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads)))")
        }
    }
}

/// SIGINT / SIGTERM turned into a flag the main loop polls.
final class StopSignal: @unchecked Sendable {
    private let sources: [DispatchSourceSignal]
    private let flag = NSLock()
    private var value = false

    init() {
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            sources.append(s)
        }
        self.sources = sources
        for s in sources {
            s.setEventHandler { [weak self] in self?.set() }
            s.resume()
        }
    }

    private func set() { flag.lock(); value = true; flag.unlock() }
    var received: Bool { flag.lock(); defer { flag.unlock() }; return value }
}
