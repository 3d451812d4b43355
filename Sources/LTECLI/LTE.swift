import ArgumentParser
import Foundation
import LTENumerics

@main
struct LTE: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lte",
        abstract: "Federated pretraining of language models with LoRA-the-Explorer.",
        subcommands: [DataCommand.self, TrainCommand.self, SampleCommand.self, ServerCommand.self, WorkerCommand.self, LaunchCommand.self, StatusCommand.self, LogCommand.self, ShowCommand.self, ReplayCommand.self, FsckCommand.self, ExportCommand.self, ImportCommand.self, LogitsCommand.self, BenchCommand.self])

    /// Runs the command; first, when an OpenBLAS setting that only the environment can carry is
    /// missing (BLASEnvironment), starts this process again with it — once, since it is then set.
    static func main() async {
        let missing = BLASEnvironment.missing()
        if !missing.isEmpty {
            for (name, value) in missing { setenv(name, value, 1) }
            let args = CommandLine.arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", args)   // returns only on failure: carry on as we are
        }
        ProcessMemory.returnFreedMemoryPromptly()
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}
