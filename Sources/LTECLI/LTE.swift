import ArgumentParser
import Foundation
import LTEBase
import LTENet
import LTENumerics

@main
struct LTE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lte",
        abstract: "Federated pretraining of language models with LoRA-the-Explorer.",
        discussion: """
            Examples:
              lte data synth --out data/synthetic
              lte launch --workers 2 --heads-per-worker 2 --config configs/tiny.json --data data/synthetic --run runs/demo --rounds 6
              lte log --run runs/demo
            """,
        subcommands: [DataCommand.self, TrainCommand.self, SampleCommand.self, ServerCommand.self, WorkerCommand.self, LaunchCommand.self,
                      StatusCommand.self, KeysCommand.self, LogCommand.self, ShowCommand.self, ReplayCommand.self, FsckCommand.self, ExportCommand.self,
                      ImportCommand.self, LogitsCommand.self, BenchCommand.self])

    /// Runs the command; first, when an OpenBLAS setting that only the environment can carry is
    /// missing (BLASEnvironment), starts this process again with it — once, since it is then set.
    ///
    /// Errors end here, once for every command: an `LTEError` (bad input anywhere in the framework)
    /// becomes what users expect from a Unix tool, one line `error: <message>` on stderr and exit
    /// status 1, no stack trace, no Swift type names — as do an `NNGError` or `WireError` that no
    /// command turned into one; anything else (argument parsing, `ExitCode`) goes to ArgumentParser,
    /// which reports it its own way.
    static func main() {
        let missing = BLASEnvironment.missing()
        if !missing.isEmpty {
            for (name, value) in missing { setenv(name, value, 1) }
            let args = CommandLine.arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", args)   // returns only on failure: carry on as we are
        }
        ProcessMemory.returnFreedMemoryPromptly()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as LTEError {
            fail(error)
        } catch let error as NNGError {
            fail(error.lteError)   // a transport failure no command explained: still one line, naming the nng call
        } catch let error as WireError {
            fail(error.lteError)
        } catch {
            exit(withError: error)
        }
    }

    private static func fail(_ error: LTEError) -> Never {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        exit(withError: ExitCode.failure)
    }
}
