import ArgumentParser
import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore

/// `lte logits`: the model's raw output on given token ids, to compare with another implementation
/// (experiments/hf-parity compares it with transformers).
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print the logits a checkpoint gives for a sequence of token ids, as JSON.",
        discussion: """
        Output: {"tokens": [...], "vocab_size": V, "logits": [[V floats] per position]}, each float with \
        9 significant digits (it reads back as the same float32). One sequence, at most \
        max_position_embeddings tokens, causal: position t sees tokens 0...t.

        Examples:
          lte logits --checkpoint hf/main --tokens 1,2,3
          lte logits --checkpoint runs/baby/checkpoint --tokens 0,5,9 --out logits.json
        """)

    @Option(help: ArgumentHelp("Checkpoint or Hugging Face model directory (model.safetensors + config.json).", valueName: "dir"))
    var checkpoint: String

    @Option(help: ArgumentHelp("Comma-separated token ids, e.g. 1,2,3.", valueName: "ids"))
    var tokens: String

    @Option(help: ArgumentHelp("Write the JSON here instead of to standard output.", valueName: "file"))
    var out: String?

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var ids: [Int32] = []
        for part in tokens.split(separator: ",", omittingEmptySubsequences: false) {
            guard let id = Int32(part.trimmingCharacters(in: .whitespaces)) else {
                throw LTEError("--tokens: \(String(part).debugDescription) is not a token id (expected e.g. 1,2,3)")
            }
            ids.append(id)
        }
        let source = try HuggingFaceModel.read(from: URL(fileURLWithPath: checkpoint))
        let c = source.config
        guard !ids.isEmpty, ids.count <= c.contextLength else {
            throw LTEError("--tokens: give 1 to \(c.contextLength) ids (max_position_embeddings), got \(ids.count)")
        }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw LTEError("--tokens: id \(bad) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        threads.apply()
        let model = try Transformer(config: c, trainable: { _ in false })
        model.params.copy(from: source.weights)
        let acts = Activations(config: c, batch: 1, seqLen: ids.count)
        _ = ids.withUnsafeBufferPointer { model.forward(acts, tokens: $0.baseAddress!, targets: nil, forTraining: false) }
        var json = "{\"tokens\": [\(ids.map(String.init).joined(separator: ", "))], \"vocab_size\": \(c.vocabSize), \"logits\": [\n"
        for t in 0..<ids.count {
            let row = (0..<c.vocabSize).map { String(format: "%.9g", acts.logits.pointer[t * c.vocabSize + $0]) }
            json += "  [" + row.joined(separator: ", ") + "]" + (t + 1 < ids.count ? ",\n" : "\n")
        }
        json += "]}\n"
        if let out {
            do { try Data(json.utf8).write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                throw LTEError("cannot write \(out): \(error.localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(Data(json.utf8))
        }
    }
}
