import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// A Hugging Face `LlamaForCausalLM` directory, the file people exchange (DESIGN.md §6):
///
///     model.safetensors   every tensor, LLaMA names, [out, in], float32, one file
///     config.json         `LlamaConfigFile` (tie_word_embeddings false)
///     tokenizer.json      copied as it is, when the source has one
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
        /// Every tensor at its `ParameterLayout(config)` offset.
        public let weights: FloatBuffer
        /// tokenizer.json's bytes, in whatever format the source used.
        public let tokenizer: Data?
    }

    /// Writes `weights` (laid out by `ParameterLayout(config)`) to `url`, replacing any directory
    /// there in one step.
    public static func write(weights: FloatBuffer, config: ModelConfig, tokenizer: Data?, to url: URL) throws {
        let layout = ParameterLayout(config)
        precondition(weights.count == layout.count, "HuggingFaceModel.write: buffer does not match the config")
        // "format": "pt" is what transformers looks for before loading a safetensors file.
        let model = try TensorSlot.encode(TensorSlot.weights(layout), from: weights.pointer, metadata: ["format": "pt"])
        try AtomicDirectory.write(to: url) { dir in
            try DurableFile.write(model, to: dir.appendingPathComponent(modelFile))
            try DurableFile.write(LlamaConfigFile.encode(config), to: dir.appendingPathComponent(configFile))
            if let tokenizer { try DurableFile.write(tokenizer, to: dir.appendingPathComponent(tokenizerFile)) }
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
        let config = try LlamaConfigFile.read(from: url.appendingPathComponent(configFile))
        let layout = ParameterLayout(config)
        let modelURL = url.appendingPathComponent(modelFile)
        let data: Data
        do { data = try Data(contentsOf: modelURL, options: .alwaysMapped) } catch {
            throw LTEError("\(modelURL.path) cannot be read: \(error.localizedDescription)")
        }
        let weights = FloatBuffer(count: layout.count)
        do {
            try TensorSlot.decode(data, slots: TensorSlot.weights(layout), into: weights.pointer, source: modelURL.path)
        } catch let e as LTEError where e.message.contains("only F32 is supported") {
            throw LTEError(e.message + " (convert the model first: model.to(torch.float32).save_pretrained(dir))")
        }
        for t in layout.tensors where !UnsafeBufferPointer(start: weights.pointer + t.offset, count: t.count).allSatisfy(\.isFinite) {
            throw LTEError("\(modelURL.path): tensor \(t.name) holds NaN or infinite values")
        }
        let tokenizer = has(tokenizerFile) ? fm.contents(atPath: url.appendingPathComponent(tokenizerFile).path) : nil
        return Contents(config: config, weights: weights, tokenizer: tokenizer)
    }
}
