import ArgumentParser
import Foundation
import LTEData

extension DataCommand {
    /// `lte data prepare`: text files in, token shards and a tokenizer out.
    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tokenize text files into DIR/{train.bin, val.bin, tokenizer.json, meta.json}.",
            discussion: """
                The first (1 − val-fraction) of the token stream becomes train.bin, the rest val.bin, as in nanoGPT \
                (with bpe, the split moves forward to the next word start, so val.bin is exactly the encoding of its text). \
                Inputs are read in blocks and shards written as they go, so corpora larger than memory stream through. \
                Directories are walked in sorted order; hidden, empty and binary files in them are skipped. \
                Every kind writes a Hugging Face tokenizer.json that Python's tokenizers and transformers load (bpe: byte-level BPE). \
                --tokenizer FILE encodes with a given tokenizer.json to the ids Python's tokenizers gives; what the file asks for \
                that lte does not implement (normalizers, other pre-tokenizers or models, single_word added tokens) is refused; added tokens such as GPT-2's <|endoftext|> are cut out of the text first, as tokenizers does.

                Examples:
                  lte data prepare --input data/tinyshakespeare.txt --tokenizer char --out data/shakespeare
                  lte data prepare --input data/tinyshakespeare.txt --tokenizer bpe --vocab 4096 --out data/shakespeare-bpe
                  lte data prepare --input a.txt --input more/ --tokenizer byte --out data/mine
                  lte data prepare --input corpus/ --tokenizer gpt2/tokenizer.json --out data/corpus-gpt2
                """)

        @Option(name: .customLong("input"), help: ArgumentHelp("A UTF-8 text file or a directory of them; repeat to concatenate several in order.", valueName: "path"))
        var inputs: [String]

        @Option(help: ArgumentHelp("Tokenizer: char (one id per character in the corpus), byte (256 ids, raw UTF-8 bytes), bpe (byte-level BPE learned from the corpus), or FILE, an existing Hugging Face tokenizer.json with a byte-level BPE model (GPT-2 style: ByteLevel pre-tokenizer, vocab and merges, added tokens like <|endoftext|>; no normalizer), used as it is.", valueName: "char|byte|bpe|file"))
        var tokenizer: String

        @Option(help: ArgumentHelp("bpe only: vocabulary size to learn, 256 single bytes plus merges (default \(Tokenizers.defaultBPEVocabSize)).", valueName: "n"))
        var vocab: Int?

        @Option(help: ArgumentHelp("bpe only: learn the merges from at most this many megabytes (10^6 bytes) from the start of the corpus.", valueName: "mb"))
        var bpeSampleMb: Int = 64

        @Option(help: ArgumentHelp("Output data directory (created if missing; existing files are replaced).", valueName: "dir"))
        var out: String

        @Option(help: "Fraction of the tokens, taken from the end, kept for validation.")
        var valFraction: Double = 0.1

        @Flag(help: OutputTarget.forceHelp) var force = false

        @Flag(help: "No progress lines, only the summary.")
        var quiet = false

        func validate() throws {
            guard bpeSampleMb > 0 else { throw ValidationError("--bpe-sample-mb must be positive") }
        }

        func run() throws {
            let outURL = try OutputTarget.check(out, kind: .dataDirectory, force: force)
            var options = DataPreparation.Options(tokenizer: tokenizer, vocabSize: vocab, valFraction: valFraction)
            options.bpeSampleBytes = bpeSampleMb * 1_000_000
            let summary = try DataPreparation.prepare(
                inputs: inputs.map { URL(fileURLWithPath: $0) }, options: options, out: outURL,
                progress: quiet ? nil : { print($0); fflush(stdout) })
            if !summary.skippedBinaries.isEmpty {
                let names = summary.skippedBinaries.prefix(5).map(\.path).joined(separator: ", ")
                let more = summary.skippedBinaries.count > 5 ? ", …" : ""
                print("note: skipped \(summary.skippedBinaries.count) binary file(s): \(names)\(more)")
            }
            print(summary)
        }
    }
}
