import ArgumentParser
import Foundation
import LTETraining

/// `lte data …`: turning text into the token shards training reads.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare token data for training.",
        subcommands: [Prepare.self, Synth.self])

    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tokenize text files into DIR/{train.bin, val.bin, tokenizer.json, meta.json}.",
            discussion: "The first (1 − val-fraction) of the token stream becomes train.bin, the rest val.bin, as in nanoGPT.")

        @Option(name: .customLong("input"), help: ArgumentHelp("A UTF-8 text file; repeat to concatenate several in order.", valueName: "path"))
        var inputs: [String]

        @Option(help: ArgumentHelp("Tokenizer: char (one id per character in the corpus) or byte (256 ids, raw UTF-8 bytes).", valueName: "char|byte"))
        var tokenizer: String

        @Option(help: ArgumentHelp("Output data directory (created if missing; existing files are replaced).", valueName: "dir"))
        var out: String

        @Option(help: "Fraction of the tokens, taken from the end, kept for validation.")
        var valFraction: Double = 0.1

        func run() throws {
            try runReportingErrors {
                let summary = try DataPreparation.prepare(
                    inputs: inputs.map { URL(fileURLWithPath: $0) }, tokenizer: tokenizer,
                    out: URL(fileURLWithPath: out), valFraction: valFraction)
                print(summary)
            }
        }
    }

    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a synthetic English-like corpus (DIR/corpus.txt) and prepare it like `prepare` does.",
            discussion: "The text comes from a seeded grammar with dialogue, agreement and punctuation: the same seed gives the same bytes.")

        @Option(help: ArgumentHelp("Output data directory (created if missing; existing files are replaced).", valueName: "dir"))
        var out: String

        @Option(help: "Seed of the generator.")
        var seed: UInt64 = 1

        @Option(help: "Size of the generated text in bytes.")
        var bytes: Int = SyntheticCorpus.defaultBytes

        @Option(help: ArgumentHelp("Tokenizer: char or byte.", valueName: "char|byte"))
        var tokenizer: String = "char"

        @Option(help: "Fraction of the tokens, taken from the end, kept for validation.")
        var valFraction: Double = 0.1

        func validate() throws {
            guard bytes > 0 else { throw ValidationError("--bytes must be positive") }
        }

        func run() throws {
            try runReportingErrors {
                let summary = try DataPreparation.synthesize(
                    seed: seed, bytes: bytes, tokenizer: tokenizer, out: URL(fileURLWithPath: out), valFraction: valFraction)
                print(summary)
            }
        }
    }
}
