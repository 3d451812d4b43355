import ArgumentParser
import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// `lte sample`: text from a checkpoint, with the checkpoint's own tokenizer.
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate text from a checkpoint and print the prompt followed by the continuation.",
        discussion: """
            Once the text outgrows the model's context (max_position_embeddings), only its last tokens are fed back in, as nanoGPT does.

            Examples:
              lte sample --checkpoint runs/baby/checkpoint --prompt "ROMEO:" --tokens 300
              lte sample --checkpoint ckpt/round-3 --prompt "First Citizen:" --temperature 0 --top-k 20
            """)

    @Option(help: ArgumentHelp("Checkpoint directory (e.g. RUN/checkpoint) with model.safetensors, config.json and tokenizer.json.", valueName: "dir"))
    var checkpoint: String

    @Option(help: ArgumentHelp("Text to continue; every character must be in the checkpoint's tokenizer.", valueName: "text"))
    var prompt: String

    @Option(help: "Number of tokens to generate.")
    var tokens: Int = 200

    @Option(help: "Sampling temperature: lower is more conservative, 0 always takes the most likely token.")
    var temperature: Float = 0.8

    @Option(help: "Sample only among the k most likely tokens (0: no limit).")
    var topK: Int = 0

    @Option(help: "Seed of the sampling draws.")
    var seed: UInt64 = 1

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard tokens >= 0 else { throw ValidationError("--tokens must be 0 or more") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or more") }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 (no limit) or more") }
    }

    func run() throws {
        let checkpoint = try Checkpoint(at: URL(fileURLWithPath: self.checkpoint))
        let config = try checkpoint.modelConfig()
        let tokenizer = try checkpoint.tokenizer()
        guard tokenizer.vocabSize <= config.vocabSize else {
            throw LTEError("checkpoint \(self.checkpoint): tokenizer.json has \(tokenizer.vocabSize) ids but the model only \(config.vocabSize)")
        }
        let ids: [Int32]
        do { ids = try tokenizer.encode(prompt) } catch let e as LTEError { throw LTEError("--prompt: \(e.message)") }
        guard !ids.isEmpty else { throw LTEError("--prompt is empty; give at least one character to start from") }
        threads.apply()
        let model = try Transformer(config: config)
        try checkpoint.load(into: model)
        var sampler = try TokenSampler(temperature: temperature, topK: topK, seed: seed)
        let continuation = TextGenerator(model: model).generate(prompt: ids, count: tokens, sampler: &sampler)
        print(prompt + tokenizer.decode(continuation))
    }
}
