import ArgumentParser
import Foundation
import LTEBase
import LTEData
import LTENet
import LTENumerics
import LTETraining

/// `lte launch`: a whole LTE run on this machine — one server process and K worker processes — with
/// one combined progress view. Ctrl-C / SIGTERM stops them all; any failed process fails the launch.
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start a parameter server and K workers on this machine and run the job to the end.")

    @Option(help: "Worker processes.") var workers: Int = 2
    @Option(help: "Heads per worker (the run has workers × heads-per-worker heads).") var headsPerWorker: Int = 2
    @Option(help: ArgumentHelp("Run config (JSON).", valueName: "file")) var config: String
    @Option(help: ArgumentHelp("Prepared data directory.", valueName: "dir")) var data: String
    @Option(name: .customLong("run"), help: ArgumentHelp("Run directory.", valueName: "dir")) var runDirectory: String
    @Option(help: "Rounds to run.") var rounds: Int = 6
    @Option(help: ArgumentHelp("Server address (default: an ipc:// socket private to this launch).", valueName: "addr")) var listen: String?
    @Option(help: "Seconds a round waits for missing heads once it has a quorum.") var roundTimeout: Double = 60
    @Option(help: "BLAS threads per worker.") var threads: Int = 1
    @Option(help: ArgumentHelp("Override a config value (repeatable), passed to the server.", valueName: "section.key=value")) var set: [String] = []

    func run() throws {
        try runReportingErrors {
            guard workers >= 1, headsPerWorker >= 1 else { throw LTEError("--workers and --heads-per-worker must be at least 1") }
            guard rounds >= 1 else { throw LTEError("--rounds must be at least 1") }
            _ = try RunConfig.load(config, overrides: set)              // fail here, not in a child, on a bad config
            _ = try TokenDataset(directory: URL(fileURLWithPath: data))
            let runURL = URL(fileURLWithPath: runDirectory)
            try FileManager.default.createDirectory(at: runURL, withIntermediateDirectories: true)
            let secretURL = runURL.appendingPathComponent("secret")
            if !FileManager.default.fileExists(atPath: secretURL.path) {
                try Data((SharedSecret.random().hexString + "\n").utf8).write(to: secretURL)
                chmod(secretURL.path, 0o600)
            }
            let address = listen ?? "ipc:///tmp/lte-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ipc"
            let total = workers * headsPerWorker
            let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            var children: [Child] = []
            let server = try Child(name: "server", executable: exe, arguments: [
                "server", "--listen", address, "--run", runDirectory, "--config", config, "--rounds", String(rounds),
                "--heads", String(total), "--data", data, "--round-timeout", String(roundTimeout), "--secret-file", secretURL.path,
            ] + set.flatMap { ["--set", $0] })
            children.append(server)
            for w in 0..<workers {
                let ids = (0..<headsPerWorker).map { String(w * headsPerWorker + $0) }.joined(separator: ",")
                children.append(try Child(name: "worker \(w)", executable: exe, arguments: [
                    "worker", "--server", address, "--heads", ids, "--data", data, "--id", "worker-\(w)",
                    "--threads", String(threads), "--secret-file", secretURL.path,
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
                    if c.status != 0 {
                        failed.append("\(c.name) exited with status \(c.status)")
                        children.filter(\.isRunning).forEach { $0.terminate() }
                    }
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            for c in children where !c.reported && c.status != 0 { failed.append("\(c.name) exited with status \(c.status)") }
            guard failed.isEmpty else { throw LTEError("launch failed: " + failed.joined(separator: "; ")) }
            say("launch: done, \(rounds) rounds in \(runDirectory)/rounds.jsonl")
        }
    }
}

/// A child process whose output lines are shown with its name in front.
final class Child {
    let name: String
    let process = Process()
    var reported = false

    init(name: String, executable: String, arguments: [String]) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let lines = PrefixedLines(prefix: "[\(name)] ")
        pipe.fileHandleForReading.readabilityHandler = { lines.take($0) }
        do { try process.run() } catch { throw LTEError("cannot start \(name): \(error.localizedDescription)") }
    }

    var isRunning: Bool { process.isRunning }
    var status: Int32 { process.isRunning ? 0 : process.terminationStatus }
    func terminate() { if process.isRunning { process.terminate() } }
    func wait() { process.waitUntilExit() }
}

/// Splits a child's output into lines and shows each with the child's name in front.
final class PrefixedLines: @unchecked Sendable {
    let prefix: String
    private var buffer = Data()
    private let lock = NSLock()

    init(prefix: String) { self.prefix = prefix }

    func take(_ handle: FileHandle) {
        let chunk = handle.availableData
        lock.lock(); defer { lock.unlock() }
        if chunk.isEmpty {   // end of output
            if !buffer.isEmpty { say(prefix + String(decoding: buffer, as: UTF8.self)) }
            buffer = Data()
            handle.readabilityHandler = nil
            return
        }
        buffer.append(chunk)
        while let nl = buffer.firstIndex(of: 0x0A) {
            say(prefix + String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
            buffer.removeSubrange(buffer.startIndex...nl)
        }
    }
}
