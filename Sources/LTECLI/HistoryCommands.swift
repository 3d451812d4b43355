import ArgumentParser
import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore

/// `--run DIR`: a run directory with `config.json` and `history.git` (what `lte server` writes).
struct RunHistoryOptions: ParsableArguments {
    @Option(name: .customLong("run"), help: ArgumentHelp("Run directory holding history.git and config.json.", valueName: "dir"))
    var runDirectory: String = "."
    @Option(help: ArgumentHelp("History line to read (main, or a branch started with lte server --from).", valueName: "name"))
    var branch: String = "main"

    func open() throws -> MergeHistory { try Self.open(run: runDirectory, branch: branch) }

    static func open(run runDirectory: String, branch: String) throws -> MergeHistory {
        let run = URL(fileURLWithPath: runDirectory)
        let configPath = run.appendingPathComponent("config.json").path
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw LTEError("\(runDirectory) is not a run directory (no config.json); pass --run DIR of an `lte server` or `lte launch` run")
        }
        let config = try RunConfig.load(configPath)
        return try MergeHistory.open(at: MergeHistory.location(inRun: run), modelConfig: config.model, branch: branch)
    }
}

private let timeFormat: DateFormatter = {
    let f = DateFormatter()
    f.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return f
}()

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", abstract: "One line per merged round, newest first (like git log --oneline).")
    @OptionGroup var runDir: RunHistoryOptions
    @Option(help: "Show at most this many rounds.") var limit: Int?

    func run() throws {
        try runReportingErrors {
            for r in try runDir.open().log(limit: limit) {
                let loss = r.meanLoss.map { String(format: "loss %.4f", $0) } ?? "initial weights"
                let heads = r.heads.isEmpty ? "" : "heads " + r.heads.map(String.init).joined(separator: ",") + "  "
                print("\(r.commit.prefix(10))  round \(r.round)  \(timeFormat.string(from: r.time))  \(heads)\(loss)  tokens \(r.tokens)\(r.snapshot ? "  [snapshot]" : "")")
            }
        }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One round (or push) in detail.",
                                                    discussion: "REV is a round number, a commit id (full or short), a tag such as snapshot/round-10, or main.")
    @OptionGroup var runDir: RunHistoryOptions
    @Argument(help: "Round number, commit id, tag or branch.") var revision: String

    func run() throws {
        try runReportingErrors {
            let c = try runDir.open().show(revision)
            print("commit \(c.commit)")
            if c.parents.count > 1 { print("merge  " + c.parents.map { String($0.prefix(10)) }.joined(separator: " ")) }
            print("date   \(timeFormat.string(from: c.time))")
            if let r = c.round {
                print("round  \(r.round)\(r.snapshot ? " (snapshot: full weights)" : "")")
                if !r.heads.isEmpty {
                    print("heads  \(r.heads.map(String.init).joined(separator: ",")) (summed in this order, rule \(r.merge.rule.rawValue), scale \(r.merge.scale), N = \(r.merge.totalHeads))")
                    for l in r.losses { print(String(format: "  head %d  loss %.4f", l.head, l.loss)) }
                    for p in r.pushes { print("  push \(p.commit.prefix(10)) from \(p.worker): heads \(p.heads.map(String.init).joined(separator: ","))") }
                }
                print("tokens \(r.tokens)  lr \(r.learningRate)\(r.bytes.map { "  bytes in \($0)" } ?? "")")
                print("weights sha256 \(r.weightsSHA256)")
                for e in r.excluded ?? [] { print("  excluded head \(e.head) from \(e.worker): \(e.reason)") }
            } else if let p = c.push {
                print("push   worker \(p.worker), round \(p.round), heads \(p.heads.map(String.init).joined(separator: ","))")
            }
            print("files  " + c.files.keys.sorted().joined(separator: " "))
        }
    }
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Rebuild the weights at a round from the nearest snapshot, check them against the recorded hash, and write a checkpoint.")
    @OptionGroup var runDir: RunHistoryOptions
    @Option(help: "Round number, commit id, tag or branch (default: main).") var to: String = "main"
    @Option(help: ArgumentHelp("Directory for model.safetensors + config.json.", valueName: "dir")) var out: String
    @Option(help: "BLAS and merge threads (the result is the same at any count).") var threads: Int = 1

    func run() throws {
        try runReportingErrors {
            BLASThreads.set(threads)
            Parallel.threads = threads
            let history = try runDir.open()
            let began = ContinuousClock.now
            let (weights, result) = try history.replay(to: to)
            let seconds = (ContinuousClock.now - began).seconds
            let model = try Transformer(config: history.modelConfig, trainable: { _ in false })
            model.params.copy(from: weights)
            try Checkpoint.save(model: model, to: URL(fileURLWithPath: out))
            say(String(format: "replayed round %d (%@) from the snapshot of round %d: %d rounds in %.2f s (%.1f rounds/s) | weights %@ match the history | wrote %@",
                       result.round, String(result.commit.prefix(10)), result.startRound, result.roundsApplied, seconds,
                       Double(result.roundsApplied) / max(seconds, 1e-9), result.weightsHash.hex, out))
        }
    }
}

struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Read every object of the history and replay every round, checking every recorded weights hash.")
    @OptionGroup var runDir: RunHistoryOptions

    func run() throws {
        try runReportingErrors {
            let began = ContinuousClock.now
            let r = try runDir.open().fsck()
            say(String(format: "fsck: clean | %d objects (%@ bytes) read | %d rounds replayed and matched | %d snapshots matched | lines %@ | %.1f s",
                       r.objects, formatCount(r.bytes), r.rounds, r.snapshots, r.lines.joined(separator: ", "), (ContinuousClock.now - began).seconds))
        }
    }
}
