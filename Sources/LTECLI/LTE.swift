import ArgumentParser
import Foundation
import LTENumerics

@main
struct LTE: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lte",
        abstract: "Federated pretraining of language models with LoRA-the-Explorer.",
        subcommands: [DataCommand.self, TrainCommand.self, SampleCommand.self, ServerCommand.self, WorkerCommand.self, LaunchCommand.self, StatusCommand.self, LogCommand.self, ShowCommand.self, ReplayCommand.self, FsckCommand.self, ExportCommand.self, ImportCommand.self, LogitsCommand.self, BenchCommand.self])

    /// Runs the command; first, where OpenBLAS chose slower kernels than this CPU can run, starts
    /// this process again with the better ones (BLASKernels) — once, since the variable is then set.
    static func main() async {
        if let core = BLASKernels.preferredCoreType() {
            setenv("OPENBLAS_CORETYPE", core, 1)
            let args = CommandLine.arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", args)   // returns only on failure: carry on with the current kernels
        }
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}
