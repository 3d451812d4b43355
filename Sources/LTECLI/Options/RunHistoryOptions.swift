import ArgumentParser
import Foundation
import LTEBase
import LTEStore
import LTETraining

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
        let config = try RunConfig.load(contentsOf: configPath, derivingDefaults: false)
        return try MergeHistory.open(at: MergeHistory.location(inRun: run), modelConfig: config.model, branch: branch)
    }
}

/// Times in `lte log` and `lte show`.
let historyTimeFormat: DateFormatter = {
    let f = DateFormatter()
    f.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return f
}()
