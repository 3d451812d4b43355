import ArgumentParser
import Foundation
import LTEData

/// `--data DIR`: a prepared data directory (train.bin, val.bin, tokenizer.json, meta.json).
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Data directory made by `lte data prepare` or `lte data synth` (every process of a run reads the same one).", valueName: "dir"))
    var data: String

    func load() throws -> TokenDataset { try TokenDataset(directory: URL(fileURLWithPath: data)) }
}
