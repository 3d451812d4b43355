import ArgumentParser

/// `lte bench …`: speed measurements (DESIGN.md §7), never timed tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure speed against this machine's sgemm peak.",
        discussion: """
            Examples:
              lte bench step --config configs/bench-256.json --threads 1 --json
              experiments/bench --json bench.json      # lte against PyTorch, side by side
            """,
        subcommands: [BenchStep.self])
}
