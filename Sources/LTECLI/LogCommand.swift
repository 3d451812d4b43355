import ArgumentParser
import Foundation
import LTEBase
import LTEStore

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "One line per merged round, newest first (like git log --oneline).",
        discussion: """
            Each line: commit, round, time, the heads merged, their mean loss, cumulative tokens, [snapshot].

            Examples:
              lte log --run runs/launch
              lte log --run runs/launch --limit 5 --branch alt
            """)
    @OptionGroup var runDir: RunHistoryOptions
    @Option(help: "Show at most this many rounds.") var limit: Int?

    func run() throws {
        if let limit, limit < 1 { throw LTEError("--limit must be at least 1 (got \(limit))") }
        for r in try runDir.open().log(limit: limit) {
            let loss = r.meanLoss.map { String(format: "loss %.4f", $0) } ?? "initial weights"
            let heads = r.heads.isEmpty ? "" : "heads " + r.heads.map(String.init).joined(separator: ",") + "  "
            print("\(r.commit.prefix(10))  round \(r.round)  \(historyTimeFormat.string(from: r.time))  \(heads)\(loss)  tokens \(r.tokens)\(r.snapshot ? "  [snapshot]" : "")")
        }
    }
}
