import ArgumentParser

@main
struct LTE: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lte",
        abstract: "Federated pretraining of language models with LoRA-the-Explorer.",
        subcommands: [DataCommand.self, TrainCommand.self, SampleCommand.self, ServerCommand.self, WorkerCommand.self, LaunchCommand.self, StatusCommand.self, LogCommand.self, ShowCommand.self, ReplayCommand.self, FsckCommand.self, ExportCommand.self, ImportCommand.self, LogitsCommand.self, BenchCommand.self])
}
