import ArgumentParser
import Foundation
import LTEData

/// `lte data …`: turning text into the token shards training reads.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare token data for training.",
        discussion: """
            Examples:
              lte data prepare --input data/tinyshakespeare.txt --tokenizer char --out data/shakespeare
              lte data synth --out data/synthetic
            """,
        subcommands: [Prepare.self, Synth.self])
}
