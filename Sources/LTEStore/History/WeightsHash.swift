import Crypto
import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// The weights hash of DESIGN.md §2: SHA-256 over the little-endian float32 bytes of every tensor of
/// the model, in Hugging Face order (`ParameterLayout` order). Server, workers and replay all compare
/// this one value, so it is computed in exactly one place; the history records its `hex`.
public enum WeightsHash {
    public static func sha256(params: UnsafePointer<Float>, layout: ParameterLayout) -> WeightsDigest {
        sha256(params: params, tensors: layout.tensors.map { ($0.offset, $0.count) })
    }

    /// The same hash over the given (offset, count) pieces of `params`, in the order given.
    public static func sha256(params: UnsafePointer<Float>, tensors: [(offset: Int, count: Int)]) -> WeightsDigest {
        var hasher = SHA256()
        for t in tensors {
            #if _endian(little)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: params + t.offset, count: t.count * 4))
            #else
            let le = (0..<t.count).map { params[t.offset + $0].bitPattern.littleEndian }
            le.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            #endif
        }
        return WeightsDigest(bytes: Array(hasher.finalize()))!
    }

    /// The frozen-weights hash: SHA-256 over the bytes of every quantized frozen tensor, in
    /// `ParameterLayout` order, each as `QuantizedTensor` stores it (for nf4: the scales' offset, the
    /// double-quantization scales, the 8-bit block scales, then the 4-bit codes; for int8: the block
    /// scales, then the codes). It covers what the heads compute against on a worker that holds W
    /// quantized, so a requantization that went differently anywhere is caught, not trained on.
    public static func sha256(frozen: QuantizedWeights) -> WeightsDigest {
        var hasher = SHA256()
        for e in frozen.entries { e.tensor.bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) } }
        return WeightsDigest(bytes: Array(hasher.finalize()))!
    }
}
