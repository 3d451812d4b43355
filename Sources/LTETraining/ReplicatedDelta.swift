import LTENumerics

/// Replicated tensors (embeddings, norm gains, an unwrapped lm_head) as a round carries them in a
/// quantized `lte.push_format`: not their values, whose small updates int8 or bf16 would round away,
/// but their change since the last merge, quantized (DESIGN.md §8). Every node holds the last merged
/// values bit for bit, so every node turns the same bytes into the same values: base + the
/// dequantized change, added in float32 in index order. With `f32` the values themselves travel.
///
/// Both ways: a push carries each head's change, the server merges base + change for each, and its
/// answer carries the change from base to the mean, which every node — the server too — applies in
/// place of the exact mean. The history records the values as applied.
public struct ReplicatedDelta {
    public let quantized: QuantizedTensor

    /// The change from `base` to `values` (`count` each), quantized in `format`.
    public init(values: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, format: QuantizedFormat) {
        let change = FloatBuffer(count: count)
        quantized = withExtendedLifetime(change) {
            for i in 0..<count { change.pointer[i] = values[i] - base[i] }
            return QuantizedTensor(quantizing: change.pointer, count: count, format: format, blockSize: format.pushedBlockSize)
        }
    }

    /// A change as received.
    public init(received q: QuantizedTensor) { quantized = q }

    /// base + the dequantized change: the values every node takes.
    public func values(over base: UnsafePointer<Float>) -> FloatBuffer {
        let out = FloatBuffer(count: quantized.count)
        withExtendedLifetime(out) {
            quantized.dequantize(into: out.pointer)
            for i in 0..<quantized.count { out.pointer[i] = base[i] + out.pointer[i] }
        }
        return out
    }
}

extension MainWeights {
    /// A round's replicated mean as it travels in `format`, after `merge` wrote the exact `mean` over
    /// `base` (the replicated tensors before the merge): with a quantized format the weights take
    /// base + the dequantized change instead, as every worker will, and the change is returned;
    /// with f32 nothing moves and nil is returned (the mean itself travels).
    @discardableResult
    public func settleReplicatedMean(_ mean: [Float], base: FloatBuffer, format: QuantizedFormat) -> ReplicatedDelta? {
        guard format != .f32 else { return nil }
        let change = withExtendedLifetime(base) {
            mean.withUnsafeBufferPointer { ReplicatedDelta(values: $0.baseAddress!, base: base.pointer, count: mean.count, format: format) }
        }
        unpackReplicated(withExtendedLifetime(base) { change.values(over: base.pointer).array })
        return change
    }
}
