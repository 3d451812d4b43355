import Foundation
import LTEData
import LTEModel

/// The small files around the weights that make a directory load in `transformers` without
/// guessing: `tokenizer_config.json` (which class reads tokenizer.json, which tokens are special),
/// `generation_config.json` (the ids `generate` starts and stops on), and a model card README.md.
///
/// lte does not know what a tokenizer's special tokens mean (a file brought from elsewhere may have
/// some), so bos/eos/pad are null everywhere: transformers 5 would otherwise assume ids 1 and 2 and
/// `generate` would stop whenever the model emits one of them.
enum HuggingFaceMetadata {
    static let tokenizerConfigFile = "tokenizer_config.json"
    static let generationConfigFile = "generation_config.json"
    static let modelCardFile = "README.md"

    /// For a tokenizer of ours; a BPE file brought from elsewhere may have added tokens, which
    /// transformers takes as special where they are (so `decode(skip_special_tokens=True)` drops them).
    static func tokenizerConfig(contextLength: Int, addedTokens: [AddedToken] = []) -> Data {
        var decoder: [String: Any] = [:]
        for token in addedTokens {
            var entry = HuggingFaceAddedTokens.json(token)
            entry["id"] = nil
            decoder[String(token.id)] = entry
        }
        return json([
            "tokenizer_class": "PreTrainedTokenizerFast",
            "added_tokens_decoder": decoder,
            "bos_token": NSNull(), "eos_token": NSNull(), "unk_token": NSNull(), "pad_token": NSNull(),
            "clean_up_tokenization_spaces": false,
            "model_max_length": contextLength,
        ])
    }

    static func generationConfig(_ special: LlamaConfigFile.SpecialTokens) -> Data {
        json([
            "_from_model_config": true,
            "bos_token_id": special.bos.map { $0 as Any } ?? NSNull(),
            "eos_token_id": special.eos.map { $0 as Any } ?? NSNull(),
            "pad_token_id": NSNull(),
        ])
    }

    /// What the directory is and how to load it, in a few lines.
    static func modelCard(_ c: ModelConfig, tokenizer: String?, source: String) -> Data {
        let rope = c.ropeScaling.map { "θ = \(c.ropeTheta), llama3 scaling (factor \($0.factor), original context \($0.originalMaxPositionEmbeddings))" }
            ?? "θ = \(c.ropeTheta)"
        let text = """
        ---
        library_name: transformers
        pipeline_tag: text-generation
        tags: [llama, lte]
        ---
        # LLaMA-style model trained with LTE

        \(source)

        - \(c.layers) layers, hidden \(c.dim), \(c.heads) attention heads (\(c.kvHeads) key/value), MLP \(c.ffnDim), SwiGLU, RMSNorm ε = \(c.normEps)
        - RoPE \(rope), context \(c.contextLength) tokens, vocabulary \(c.vocabSize), untied lm_head, float32
        - tokenizer: \(tokenizer ?? "none shipped")

        ```python
        from transformers import AutoModelForCausalLM, AutoTokenizer
        model = AutoModelForCausalLM.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        ```

        """
        return Data(text.utf8)
    }

    private static func json(_ object: [String: Any]) -> Data {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return data + Data("\n".utf8)
    }
}
