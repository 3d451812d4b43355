import LTENumerics

/// The frozen (wrapped) tensors of a model held in fewer bits (`lte.frozen_weights`): each tensor of
/// the `ParameterLayout` quantized on its own, in blocks (`QuantizedTensor`). Heads compute against
/// their dequantized values; the float32 master stays where it is (the server's, or the in-process
/// run's `MainWeights`), and after every merge the tensors are quantized again from it, the same
/// deterministic function on every node.
public final class QuantizedWeights: FrozenWeightStore {
    public struct Entry: Sendable {
        public let name: String
        public let offset: Int
        public let count: Int
        public fileprivate(set) var tensor: QuantizedTensor
    }

    public let format: QuantizedFormat
    /// In layout order.
    public private(set) var entries: [Entry]

    /// Quantizes the tensors of `layout` named in `names` from `params`.
    public convenience init(params: FloatBuffer, layout: ParameterLayout, names: Set<String>, format: QuantizedFormat) {
        self.init(params: UnsafePointer(params.pointer), layout: layout, names: names, format: format)
    }

    /// The same from weights anywhere in `ParameterLayout` order (replay's buffer, a history's snapshot).
    public init(params: UnsafePointer<Float>, layout: ParameterLayout, names: Set<String>, format: QuantizedFormat) {
        self.format = format
        entries = layout.tensors.filter { names.contains($0.name) }.map { t in
            Entry(name: t.name, offset: t.offset, count: t.count,
                  tensor: QuantizedTensor(quantizing: params + t.offset, count: t.count, format: format))
        }
    }

    /// Quantizes every tensor again from the master weights (after a merge).
    public func requantize(from params: FloatBuffer) {
        for i in entries.indices {
            entries[i].tensor = QuantizedTensor(quantizing: params.pointer + entries[i].offset, count: entries[i].count, format: format)
        }
    }

    /// Takes tensors quantized elsewhere (the server's, after a merge), in `entries` order.
    public func replace(with tensors: [QuantizedTensor]) {
        precondition(tensors.count == entries.count && zip(tensors, entries).allSatisfy { $0.format == format && $0.count == $1.count },
                     "QuantizedWeights.replace: tensors of another shape or format")
        for i in entries.indices { entries[i].tensor = tensors[i] }
    }

    /// Bytes held: what the frozen weights cost in this format.
    public var byteCount: Int { entries.reduce(0) { $0 + $1.tensor.bytes.count } }

    /// Dequantizes the tensors that make up [offset, offset + count): whole tensors only, as the
    /// model asks for a tensor or a fused group of adjacent ones.
    public func read(offset: Int, count: Int, into y: UnsafeMutablePointer<Float>) {
        var covered = 0
        for e in entries where e.offset >= offset && e.offset < offset + count {
            precondition(e.offset + e.count <= offset + count, "QuantizedWeights.read: \(e.name) straddles the range")
            e.tensor.dequantize(into: y + (e.offset - offset))
            covered += e.count
        }
        precondition(covered == count, "QuantizedWeights.read: [\(offset), +\(count)) is not a group of quantized tensors")
    }
}
