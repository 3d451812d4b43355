import ArgumentParser
import LTETraining

/// `--config FILE` and `--set section.key=value`: a run config and the overrides applied to it.
struct RunConfigOptions: ParsableArguments {
    @Option(name: .customLong("config"),
            help: ArgumentHelp("Run config (JSON) with \"model\", \"training\", \"lte\" and \"run\" sections, e.g. configs/tiny.json.", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("Override a config value, e.g. training.learning_rate=3e-4 or lte.merge_every=5 (repeatable).", valueName: "section.key=value"))
    var set: [String] = []

    /// The config file with `--set` applied, then `flags` (a command's own flags win over --set).
    func load(flags: [String] = []) throws -> RunConfig {
        try RunConfig.load(contentsOf: file, overrides: set + flags)
    }
}
