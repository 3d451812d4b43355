import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics

/// A Hugging Face `LlamaForCausalLM` directory, the file people exchange (DESIGN.md §6):
///
///     model.safetensors       every tensor, LLaMA names, [out, in], float32, one file
///     config.json             `LlamaConfigFile` (tie_word_embeddings false, bos/eos ids or null)
///     generation_config.json  the same bos/eos, for `generate`
///     README.md               a model card
///     tokenizer.json          when the source has one: ours in Hugging Face form (older char/byte
///     tokenizer_config.json   files converted), with a tokenizer_config for `AutoTokenizer`; one
///                             this code cannot read (imported from elsewhere) copied as it is, with
///                             the source's tokenizer_config.json
///
/// Our parameter buffer already holds q, k, v and gate, up as separate tensors in Hugging Face
/// order (`ParameterLayout`), so writing is a copy and reading is its inverse: a round trip is
/// bit-exact. A `Checkpoint` directory is one of these plus optimizer state, so either reads here.
public enum HuggingFaceModel {
    public static let modelFile = Checkpoint.modelFile
    public static let configFile = Checkpoint.configFile
    public static let tokenizerFile = Checkpoint.tokenizerFile

    /// What `read` found.
    public struct Contents {
        public let config: ModelConfig
        /// bos/eos ids config.json names.
        public let special: LlamaConfigFile.SpecialTokens
        /// Every tensor at its `ParameterLayout(config)` offset.
        public let weights: FloatBuffer
        /// tokenizer.json's bytes, in whatever format the source used.
        public let tokenizer: Data?
        /// tokenizer_config.json's bytes, when the source has one.
        public let tokenizerConfig: Data?
        /// The source tied lm_head to the embedding; `weights` holds it untied, as a copy.
        public var untiedLMHead = false
    }

    /// Writes `weights` (laid out by `ParameterLayout(config)`) to `url`, replacing any directory
    /// there in one step; `source` is the model card's line on where the weights come from.
    public static func write(weights: FloatBuffer, config: ModelConfig, special: LlamaConfigFile.SpecialTokens = .none,
                             tokenizer: Data?, tokenizerConfig: Data? = nil, source: String = "Exported by `lte export`.",
                             to url: URL) throws {
        let layout = ParameterLayout(config)
        precondition(weights.count == layout.count, "HuggingFaceModel.write: buffer does not match the config")
        // "format": "pt" is what transformers looks for before loading a safetensors file.
        // lte also records the weights hash, so a damaged file is refused when it is read back.
        let hash = WeightsHash.sha256(params: weights.pointer, layout: layout)
        let model = try TensorSlot.encode(TensorSlot.weights(layout), from: weights.pointer,
                                          metadata: ["format": "pt", Checkpoint.weightsHashKey: hash.hex])
        var files: [String: Data] = [
            modelFile: model,
            configFile: LlamaConfigFile.encode(config, special: special),
            HuggingFaceMetadata.generationConfigFile: HuggingFaceMetadata.generationConfig(special),
        ]
        var kind: String?
        if let tokenizer {
            let placeholder = url.appendingPathComponent(tokenizerFile)
            if let ours = try? Tokenizers.decode(tokenizer, source: placeholder) {
                files[tokenizerFile] = try Tokenizers.huggingFaceData(tokenizer, source: placeholder)
                let added = (ours as? BPETokenizer)?.addedTokens ?? []
                files[HuggingFaceMetadata.tokenizerConfigFile] = HuggingFaceMetadata.tokenizerConfig(contextLength: config.contextLength, addedTokens: added)
                let extra = added.isEmpty ? "no added tokens" : "added tokens " + added.map { "\($0.content) = \($0.id)" }.joined(separator: ", ")
                kind = "\(ours.kind), \(ours.vocabSize) ids, \(extra) (tokenizer.json, PreTrainedTokenizerFast)"
            } else {
                files[tokenizerFile] = tokenizer
                if let tokenizerConfig { files[HuggingFaceMetadata.tokenizerConfigFile] = tokenizerConfig }
                kind = "tokenizer.json as imported"
            }
        }
        files[HuggingFaceMetadata.modelCardFile] = HuggingFaceMetadata.modelCard(config, tokenizer: kind, source: source)
        try AtomicDirectory.write(to: url) { dir in
            for (name, data) in files.sorted(by: { $0.key < $1.key }) { try DurableFile.write(data, to: dir.appendingPathComponent(name)) }
        }
    }

    /// Reads a directory `transformers` wrote (`save_pretrained` in float32, `safe_serialization`)
    /// or `write` wrote, checking that it describes a model this decoder runs and holds exactly its
    /// tensors, with their shapes, in float32, all finite.
    public static func read(from url: URL) throws -> Contents {
        let fm = FileManager.default
        let dir = url.path
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LTEError("\(dir) is not a directory (expected a Hugging Face model directory with model.safetensors and config.json)")
        }
        func has(_ name: String) -> Bool { fm.fileExists(atPath: url.appendingPathComponent(name).path) }
        guard has(modelFile) else {
            if has("model.safetensors.index.json") {
                throw LTEError("\(dir) holds a sharded checkpoint (model.safetensors.index.json); save it as one file (save_pretrained(..., max_shard_size=\"100GB\"))")
            }
            if has("pytorch_model.bin") {
                throw LTEError("\(dir) holds pytorch_model.bin; only safetensors is read (save_pretrained(..., safe_serialization=True))")
            }
            throw LTEError("\(dir) has no \(modelFile)")
        }
        guard has(configFile) else { throw LTEError("\(dir) has no \(configFile)") }
        let (config, special, tied) = try LlamaConfigFile.readWithSpecialTokens(from: url.appendingPathComponent(configFile))
        let layout = ParameterLayout(config)
        let modelURL = url.appendingPathComponent(modelFile)
        let data: Data
        do { data = try Data(contentsOf: modelURL, options: .alwaysMapped) } catch {
            throw LTEError("\(modelURL.path) cannot be read: \(error.localizedDescription)")
        }
        let weights = FloatBuffer(count: layout.count)
        do {
            try decodeWeights(data, layout: layout, tied: tied, into: weights, source: modelURL.path)
        } catch let e as LTEError where e.message.contains("only F32 is supported") {
            throw LTEError(e.message + " (convert the model first: model.to(torch.float32).save_pretrained(dir))")
        }
        for t in layout.tensors where !UnsafeBufferPointer(start: weights.pointer + t.offset, count: t.count).allSatisfy(\.isFinite) {
            throw LTEError("\(modelURL.path): tensor \(t.name) holds NaN or infinite values")
        }
        if let recorded = try SafeTensorsHeader.parse(data, source: modelURL.path).metadata[Checkpoint.weightsHashKey] {
            let hash = WeightsHash.sha256(params: weights.pointer, layout: layout)
            guard hash.hex == recorded else {
                throw LTEError("\(modelURL.path) is damaged: its weights hash \(hash.short)… differs from the \(String(recorded.prefix(12)))… recorded when lte wrote it")
            }
        }
        func contents(_ name: String) -> Data? { has(name) ? fm.contents(atPath: url.appendingPathComponent(name).path) : nil }
        var result = Contents(config: config, special: special, weights: weights, tokenizer: contents(tokenizerFile),
                              tokenizerConfig: contents(HuggingFaceMetadata.tokenizerConfigFile))
        result.untiedLMHead = tied
        return result
    }

    /// Every tensor of `layout` from a safetensors file. A tied model's file has no lm_head
    /// (save_pretrained stores a shared tensor once), or one equal to the embedding: either way
    /// lm_head becomes a copy of the embedding, which gives the tied model's logits exactly.
    static func decodeWeights(_ data: Data, layout: ParameterLayout, tied: Bool, into weights: FloatBuffer, source: String) throws {
        let all = TensorSlot.weights(layout)
        guard tied else { return try TensorSlot.decode(data, slots: all, into: weights.pointer, source: source) }
        let head = all.first { $0.offset == layout.lmHead }!, embedding = all.first { $0.offset == layout.embed }!
        // The header alone says whether lm_head is stored (SafeTensorsFile would copy every tensor).
        let hasHead = try SafeTensorsHeader.parse(data, source: source).entries.contains { $0.name == head.name }
        try TensorSlot.decode(data, slots: hasHead ? all : all.filter { $0.name != head.name }, into: weights.pointer, source: source)
        let stored = UnsafeBufferPointer(start: weights.pointer + head.offset, count: head.count)
        let embedded = UnsafeBufferPointer(start: weights.pointer + embedding.offset, count: embedding.count)
        if hasHead && !stored.elementsEqual(embedded, by: { $0.bitPattern == $1.bitPattern }) {
            throw LTEError("\(source): tie_word_embeddings is true but \(head.name) differs from \(embedding.name)")
        }
        (weights.pointer + head.offset).update(from: weights.pointer + embedding.offset, count: head.count)
    }
}
