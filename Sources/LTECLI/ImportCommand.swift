import ArgumentParser
import Foundation
import LTEModel
import LTENumerics
import LTEStore

/// `lte import`: a Hugging Face LLaMA model back into a checkpoint `lte sample`, `lte logits` and
/// `lte train --config` (with matching model fields) can use.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read a Hugging Face LlamaForCausalLM directory (model.safetensors + config.json) into a checkpoint directory.",
        discussion: """
        The model must be one this decoder runs: float32 tensors in one model.safetensors (convert bf16/f16 \
        with model.to(torch.float32).save_pretrained(dir)), no \
        biases, SiLU, head_dim = hidden_size / num_attention_heads, RoPE plain or LLaMA 3.1's llama3 \
        scaling (read from transformers 5's rope_parameters or 4.x's rope_theta/rope_scaling). Every other \
        key that changes the math is refused with an error naming it. Tensors are copied bit for bit; \
        tokenizer.json is kept (converted to the Hugging Face form when it is lte's own). `lte export` then \
        `lte import` gives back the same bytes and weights hash. A tied lm_head (tie_word_embeddings true) \
        is imported untied, as a copy of the embedding: the same logits, but training then updates the \
        two separately and exports write them untied.

        Examples:
          lte import --from some-hf-llama --out ckpt/imported
          lte import --from hf/main --out ckpt/main && lte sample --checkpoint ckpt/main --prompt "ROMEO:"
        """)

    @Option(help: ArgumentHelp("Hugging Face model directory (save_pretrained output, or lte export --format hf).", valueName: "dir"))
    var from: String

    @Option(help: ArgumentHelp("Checkpoint directory to write (an existing one only if lte wrote it, unless --force).", valueName: "dir"))
    var out: String

    @Flag(help: OutputTarget.forceHelp) var force = false

    func run() throws {
        let outURL = try OutputTarget.check(out, kind: .modelDirectory, force: force)
        let source = try HuggingFaceModel.read(from: URL(fileURLWithPath: from))
        try HuggingFaceModel.write(weights: source.weights, config: source.config, special: source.special, tokenizer: source.tokenizer,
                                   tokenizerConfig: source.tokenizerConfig, source: "Imported by `lte import` from \(from).", to: outURL)
        let c = source.config
        let hash = WeightsHash.sha256(params: source.weights.pointer, layout: ParameterLayout(c))
        if source.untiedLMHead {
            say("note: \(from) ties lm_head to the embedding; lm_head is imported as a copy of it (same logits) and trains on its own")
        }
        say("imported \(from): \(c.layers) layers, hidden \(c.dim), vocab \(c.vocabSize)\(source.tokenizer == nil ? ", no tokenizer.json" : "") | weights \(hash) | wrote \(out)")
    }
}
