import ArgumentParser
import Foundation
import LTEData

extension DataCommand {
    /// `lte data synth`: the built-in seeded corpus, prepared.
    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a synthetic English-like corpus (DIR/corpus.txt) and prepare it like `prepare` does.",
            discussion: """
                The text comes from a seeded grammar with dialogue, agreement and punctuation: the same seed gives the same bytes.

                Examples:
                  lte data synth --out data/synthetic
                  lte data synth --out data/synthetic-bpe --tokenizer bpe --bytes 2000000 --seed 7
                """)

        @Option(help: ArgumentHelp("Output data directory (created if missing; existing files are replaced).", valueName: "dir"))
        var out: String

        @Option(help: "Seed of the generator.")
        var seed: UInt64 = 1

        @Option(help: "Size of the generated text in bytes.")
        var bytes: Int = SyntheticCorpus.defaultBytes

        @Option(help: ArgumentHelp("Tokenizer: char, byte or bpe (default vocabulary size).", valueName: "char|byte|bpe"))
        var tokenizer: TokenizerKind = .char

        @Option(help: "Fraction of the tokens, taken from the end, kept for validation.")
        var valFraction: Double = 0.1

        @Flag(help: OutputTarget.forceHelp) var force = false

        func validate() throws {
            guard bytes > 0 else { throw ValidationError("--bytes must be positive") }
        }

        func run() throws {
            let outURL = try OutputTarget.check(out, kind: .dataDirectory, force: force)
            let summary = try DataPreparation.synthesize(
                seed: seed, bytes: bytes, tokenizer: tokenizer.rawValue, out: outURL, valFraction: valFraction)
            print(summary)
        }
    }
}
