import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// A named tensor at a fixed place in a flat float32 buffer: how the history moves weights and
/// factors between memory and safetensors blobs without knowing which it is moving.
public struct TensorSlot: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }

    public init(name: String, shape: [Int], offset: Int) {
        self.name = name; self.shape = shape; self.offset = offset
    }

    /// Every tensor of the model, at its `ParameterLayout` offset.
    public static func weights(_ layout: ParameterLayout) -> [TensorSlot] {
        layout.tensors.map { TensorSlot(name: $0.name, shape: $0.shape, offset: $0.offset) }
    }

    /// The canonical bytes of these tensors read from `buffer`: sorted by name, no metadata beyond
    /// `metadata`. Equal values give equal bytes, hence one git blob (history dedup relies on it).
    public static func encode(_ slots: [TensorSlot], from buffer: UnsafePointer<Float>, metadata: [String: String] = [:]) throws -> Data {
        try SafeTensorsFile.encode(slots.map {
            SafeTensorsFile.TensorView(name: $0.name, shape: $0.shape, data: UnsafeBufferPointer(start: buffer + $0.offset, count: $0.count))
        }, metadata: metadata)
    }

    /// Reads a safetensors file holding exactly these tensors, with these shapes, into `buffer`.
    /// `source` names the file in errors (e.g. "round 3 heads/1.safetensors").
    public static func decode(_ data: Data, slots: [TensorSlot], into buffer: UnsafeMutablePointer<Float>, source: String) throws {
        let file = try SafeTensorsFile(bytes: data, source: source)
        let expected = Set(slots.map(\.name))
        if let extra = file.names.first(where: { !expected.contains($0) }) {
            throw LTEError("\(source): unexpected tensor \(extra)")
        }
        for slot in slots {
            guard let t = file[slot.name] else { throw LTEError("\(source): missing tensor \(slot.name)") }
            guard t.shape == slot.shape else {
                throw LTEError("\(source): tensor \(slot.name) has shape \(t.shape), expected \(slot.shape)")
            }
            t.values.withUnsafeBufferPointer { (buffer + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
        }
    }
}

/// One LTE head's factors as a safetensors file with PEFT names (DESIGN.md §6):
/// `base_model.model.<module>.lora_A.weight` [r, in] and `….lora_B.weight` [out, r], for every
/// site of the `LoRALayout`, read from and written to the layout's flat buffer.
public enum HeadFactors {
    public static func slots(_ layout: LoRALayout) -> [TensorSlot] {
        layout.sites.flatMap { s -> [TensorSlot] in
            let module = "base_model.model." + s.site.projection.modulePath(layer: s.site.layer)
            return [TensorSlot(name: module + ".lora_A.weight", shape: [layout.rank, s.inFeatures], offset: s.a),
                    TensorSlot(name: module + ".lora_B.weight", shape: [s.outFeatures, layout.rank], offset: s.b)]
        }
    }

    /// The canonical file for a head whose factors are at `factors` (laid out by `layout`).
    public static func encode(_ factors: UnsafePointer<Float>, layout: LoRALayout) throws -> Data {
        try TensorSlot.encode(slots(layout), from: factors)
    }

    /// Decodes and checks a head's file into a new buffer laid out by `layout`.
    public static func decode(_ data: Data, layout: LoRALayout, source: String) throws -> FloatBuffer {
        let buffer = FloatBuffer(count: layout.count)
        try TensorSlot.decode(data, slots: slots(layout), into: buffer.pointer, source: source)
        return buffer
    }
}
