import ArgumentParser
import LTENumerics

/// `--threads`, for the commands that compute in this process.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and the model's own loops (results are the same at any count).")
    var threads: Int = 1

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    /// Sets OpenBLAS's and our own loops' thread counts for the rest of the process.
    func apply() {
        BLASThreads.set(threads)
        Parallel.threads = threads
    }
}
