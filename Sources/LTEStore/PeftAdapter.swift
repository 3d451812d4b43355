import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// A PEFT LoRA adapter directory, as `peft`'s `PeftModel.from_pretrained(base, dir)` loads it:
///
///     adapter_config.json          peft_type LORA, r, lora_alpha, target_modules, modules_to_save
///     adapter_model.safetensors    base_model.model.<module>.lora_A.weight  [r, in]
///                                  base_model.model.<module>.lora_B.weight  [out, r]
///                                  base_model.model.<module>.weight         (modules_to_save only)
///
/// PEFT adds (lora_alpha / r) · B A x to every target module's output. A sum of low-rank terms
/// factor · Σ ±Bₜ Aₜ, each of rank `layout.rank`, is one LoRA of rank r = rank × terms: A stacks the
/// terms' A by rows, B their ±B by columns, and lora_alpha = r · factor makes PEFT's scale exactly
/// `factor` (`use_rslora` false: rsLoRA would scale by α/√r). The factors are stored as they are,
/// so the file holds the heads' own bits; only the sign of a correction term's B is flipped.
public enum PeftAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// Writes an adapter for factor · Σ ±Bₜ Aₜ over every site of `layout`, plus, when `modulesToSave`
    /// is given, those tensors as whole replacement modules (what `peft` calls modules_to_save);
    /// `extraFiles` (name → bytes) go into the same directory. `baseModel` is written as
    /// base_model_name_or_path, which `AutoPeftModelForCausalLM` loads the base from.
    public static func write(terms: [RoundDelta.Term], layout: LoRALayout, factor: Float,
                             modulesToSave: (slots: [TensorSlot], values: FloatBuffer)? = nil, baseModel: String? = nil,
                             extraFiles: [String: Data] = [:], to url: URL) throws {
        let files = try files(terms: terms, layout: layout, factor: factor, modulesToSave: modulesToSave, baseModel: baseModel)
            .merging(extraFiles) { _, extra in extra }
        try AtomicDirectory.write(to: url) { dir in
            for (name, data) in files.sorted(by: { $0.key < $1.key }) { try DurableFile.write(data, to: dir.appendingPathComponent(name)) }
        }
    }

    /// The adapter's files (name → bytes), for a caller that writes them into a directory it builds.
    public static func files(terms: [RoundDelta.Term], layout: LoRALayout, factor: Float,
                             modulesToSave: (slots: [TensorSlot], values: FloatBuffer)? = nil,
                             baseModel: String? = nil) throws -> [String: Data] {
        guard !terms.isEmpty else { throw LTEError("PEFT export: no head factors to export") }
        let r = layout.rank, rank = r * terms.count
        // One buffer per site: A (rank × in) then B (out × rank).
        var tensors: [(name: String, shape: [Int], values: FloatBuffer)] = []
        for s in layout.sites {
            let n = s.inFeatures, m = s.outFeatures
            let module = "base_model.model." + s.site.projection.modulePath(layer: s.site.layer)
            let a = FloatBuffer(count: rank * n), b = FloatBuffer(count: m * rank)
            for (t, term) in terms.enumerated() {
                (a.pointer + t * r * n).update(from: term.factors.pointer + s.a, count: r * n)
                let sign: Float = term.negated ? -1 : 1
                for i in 0..<m {
                    for k in 0..<r { b.pointer[i * rank + t * r + k] = sign * term.factors.pointer[s.b + i * r + k] }
                }
            }
            tensors.append((module + ".lora_A.weight", [rank, n], a))
            tensors.append((module + ".lora_B.weight", [m, rank], b))
        }
        var views = tensors.map {
            SafeTensorsFile.TensorView(name: $0.name, shape: $0.shape, data: UnsafeBufferPointer(start: $0.values.pointer, count: $0.values.count))
        }
        var saved: [String] = []
        if let (slots, values) = modulesToSave {
            for slot in slots {
                views.append(SafeTensorsFile.TensorView(name: "base_model.model." + slot.name, shape: slot.shape,
                                                        data: UnsafeBufferPointer(start: values.pointer + slot.offset, count: slot.count)))
                saved.append(String(slot.name.dropLast(".weight".count)))
            }
        }
        let targets = layout.sites.map { $0.site.projection.modulePath(layer: $0.site.layer) }
        let config: [String: Any] = [
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": baseModel.map { $0 as Any } ?? NSNull(),
            "r": rank,
            // Exact: a float32 times a small integer is exact in double, so α / r == factor.
            "lora_alpha": Double(factor) * Double(rank),
            "target_modules": targets,
            "modules_to_save": saved.isEmpty ? NSNull() : saved as Any,
            "lora_dropout": 0.0,
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": false,
            "use_dora": false,
            "init_lora_weights": true,
            "inference_mode": true,
        ]
        let json = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        let weights = try withExtendedLifetime(tensors) { try SafeTensorsFile.encode(views, metadata: ["format": "pt"]) }
        return [weightsFile: weights, configFile: json + Data("\n".utf8)]
    }
}
