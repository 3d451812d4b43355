import ArgumentParser
import Foundation
import LTEBase
import LTEModel
import LTENet
import LTETraining

/// `lte launch`: a whole LTE run on this machine — one server process and K worker processes — with
/// one combined progress view. Ctrl-C / SIGTERM stops them all; any failed process fails the launch.
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start a parameter server and K workers on this machine and run the job to the end.",
        discussion: """
            The server gets --config, --set and --data; each worker gets --data and --threads, and a shared secret \
            made for the run (RUN/secret). Output lines carry the process's name in front.

            Examples:
              lte launch --workers 2 --heads-per-worker 2 --config configs/shakespeare-char-baby.json --data data/shakespeare --run runs/launch --rounds 6
              lte launch --workers 1 --heads-per-worker 4 --config configs/bench-256.json --data data/synthetic --run runs/bench --rounds 12 --set lte.rank=8
              lte launch --workers 2 --heads-per-worker 2 --config configs/tiny.json --data data/synthetic --run runs/watched --rounds 50 --metrics 127.0.0.1:9464
            """)

    @Option(help: "Worker processes.") var workers: Int = 2
    @Option(help: "Heads per worker (the run has workers × heads-per-worker heads).") var headsPerWorker: Int = 2
    @OptionGroup var config: RunConfigOptions
    @OptionGroup var data: DataOptions
    @Option(name: .customLong("run"), help: ArgumentHelp("Run directory.", valueName: "dir")) var runDirectory: String
    @Option(help: "Rounds to run.") var rounds: Int = 6
    @Option(help: ArgumentHelp("Server address (default: an ipc:// socket private to this launch).", valueName: "addr")) var listen: String?
    @Option(help: "Seconds a round waits for missing heads once it has a quorum.") var roundTimeout: Double = 60
    @Option(help: ArgumentHelp("Have the server serve Prometheus metrics at http://HOST:PORT/metrics (see `lte server --help`).", valueName: "host:port"))
    var metrics: String?
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        guard workers >= 1, headsPerWorker >= 1 else { throw LTEError("--workers and --heads-per-worker must be at least 1") }
        guard rounds >= 1 else { throw LTEError("--rounds must be at least 1") }
        // Fail here, not in a child, on a bad config. The heads go in as an override so that the
        // settings derived from them (lte.rank, RunConfig+Defaults) are the server's.
        var cfg = try config.load(flags: ["lte.heads=\(workers * headsPerWorker)"])
        let dataset = try data.load()
        if cfg.vocabFromData { cfg.model.vocabSize = dataset.vocabSize }
        // Every process of the launch lives on this machine: the server and each worker.
        let worker = MemoryBudget.worker(cfg.model, lora: cfg.lte, heads: headsPerWorker, totalHeads: cfg.lte.heads, batch: cfg.training.batchSize,
                                         recompute: cfg.training.recompute, holdsFrozenMaster: cfg.lte.frozenWeights == .f32)
        try (0..<workers).reduce(MemoryBudget.server(cfg.model, lora: cfg.lte, totalHeads: cfg.lte.heads)) { sum, _ in sum + worker }
            .requireAvailable(for: "this launch (a server and \(workers) worker\(workers == 1 ? "" : "s") of a model of \(formatCount(ParameterLayout(cfg.model).count)) parameters)")
        if let metrics { _ = try MetricsListener.parse(metrics) }   // its form here; the server binds it
        let runURL = URL(fileURLWithPath: runDirectory)
        try FileManager.default.createDirectory(at: runURL, withIntermediateDirectories: true)
        let secretURL = runURL.appendingPathComponent("secret")
        if !FileManager.default.fileExists(atPath: secretURL.path) {
            try Data((SharedSecret.random().hexString + "\n").utf8).write(to: secretURL)
            chmod(secretURL.path, 0o600)
        }
        let address = listen ?? "ipc:///tmp/lte-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ipc"
        let total = workers * headsPerWorker
        let exe = Child.currentExecutable
        var children: [Child] = []
        let server = try Child(name: "server", executable: exe, arguments: [
            "server", "--listen", address, "--run", runDirectory, "--config", config.file, "--rounds", String(rounds),
            "--heads", String(total), "--await-heads", String(total), "--data", data.data, "--round-timeout", String(roundTimeout), "--secret-file", secretURL.path,
        ] + config.set.flatMap { ["--set", $0] } + (metrics.map { ["--metrics", $0] } ?? []))
        children.append(server)
        for w in 0..<workers {
            let ids = (0..<headsPerWorker).map { String(w * headsPerWorker + $0) }.joined(separator: ",")
            children.append(try Child(name: "worker \(w)", executable: exe, arguments: [
                "worker", "--server", address, "--heads", ids, "--data", data.data, "--id", "worker-\(w)",
                "--threads", String(threads.threads), "--secret-file", secretURL.path,
            ]))
        }
        say("launch: server + \(workers) workers × \(headsPerWorker) heads = \(total) heads, \(rounds) rounds, on \(address)")
        let stop = StopSignal()
        var failed: [String] = []
        while children.contains(where: \.isRunning) {
            if stop.received {
                say("launch: stopping all processes")
                children.forEach { $0.terminate() }
                for c in children { c.wait() }
                throw LTEError("stopped by signal")
            }
            for c in children where !c.isRunning && !c.reported {
                c.reported = true
                if c.failed {
                    failed.append("\(c.name) \(c.ending)")
                    children.filter(\.isRunning).forEach { $0.terminate() }
                }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        for c in children where !c.reported && c.failed { failed.append("\(c.name) \(c.ending)") }
        guard failed.isEmpty else { throw LTEError("launch failed: " + failed.joined(separator: "; ")) }
        say("launch: done, \(rounds) rounds in \(runDirectory)/rounds.jsonl")
    }
}
