import LTEModel
import LTENumerics

/// A head's factors as a round carries them, in `lte.push_format` (DESIGN.md §8): the bytes that
/// cross the wire and the float32 values they stand for. Those values — not the head's own — are
/// what every node merges, what the history records and replay reads, and what becomes the head's
/// correction Vᵢ. The head itself trains on from its own float32 factors, so with the reset-less
/// rule a round's rounding error is not lost: it is part of BᵢAᵢ − Vᵢ at the next merge.
public struct PushedFactors {
    public let quantized: QuantizedTensor
    /// The dequantized values.
    public let values: FloatBuffer

    /// Quantizes `factors` (round to nearest even on fixed blocks of the format's `pushedBlockSize`:
    /// the same bytes on every node).
    public init(quantizing factors: FloatBuffer, format: QuantizedFormat) {
        let q = withExtendedLifetime(factors) { QuantizedTensor(quantizing: factors.pointer, count: factors.count, format: format, blockSize: format.pushedBlockSize) }
        self.init(received: q)
    }

    /// Factors as received: their bytes, dequantized.
    public init(received q: QuantizedTensor) {
        quantized = q
        values = FloatBuffer(count: q.count)
        q.dequantize(into: values.pointer)
    }
}
