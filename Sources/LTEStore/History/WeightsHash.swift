import Crypto
import Foundation
import LTEModel

/// The weights hash of DESIGN.md §2: SHA-256 over the little-endian float32 bytes of every tensor of
/// the model, in Hugging Face order (`ParameterLayout` order), as lowercase hex. Server, workers and
/// replay all compare this one value, so it is computed in exactly one place.
public enum WeightsHash {
    public static func sha256(params: UnsafePointer<Float>, layout: ParameterLayout) -> String {
        var hasher = SHA256()
        for t in layout.tensors {
            #if _endian(little)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: params + t.offset, count: t.count * 4))
            #else
            let le = (0..<t.count).map { params[t.offset + $0].bitPattern.littleEndian }
            le.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            #endif
        }
        return hex(hasher.finalize())
    }

    /// SHA-256 of arbitrary bytes, as lowercase hex.
    public static func sha256(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
