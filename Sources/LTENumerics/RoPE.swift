import Foundation

/// Rotary position embedding in Hugging Face's "rotate-half" convention: for a head of size d,
/// dimension i < d/2 pairs with i + d/2 and both turn by the angle pos · θ^(−2i/d).
///   x'ᵢ       = xᵢ cos − xᵢ₊d/₂ sin
///   x'ᵢ₊d/₂   = xᵢ₊d/₂ cos + xᵢ sin
/// The backward pass is the same rotation by the opposite angle. `scaling` (LLaMA 3.1's) changes only
/// the frequencies θ^(−2i/d), never the rotation.
public struct RoPE {
    public let headDim: Int
    public let maxPositions: Int
    public let cos: FloatBuffer   // (maxPositions, headDim/2)
    public let sin: FloatBuffer

    public init(headDim: Int, maxPositions: Int, theta: Float, scaling: RoPEScaling? = nil) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        cos = FloatBuffer(count: maxPositions * half)
        sin = FloatBuffer(count: maxPositions * half)
        for p in 0..<maxPositions {
            for i in 0..<half {
                // Computed in double and rounded once, as HF computes inv_freq in float32 then the
                // product; the difference is below float32 resolution for the contexts used here.
                var invFreq = 1.0 / Foundation.pow(Double(theta), Double(2 * i) / Double(headDim))
                if let scaling { invFreq = Double(scaling.rescale(Float(invFreq))) }
                let angle = Double(Float(Double(p)) * Float(invFreq))
                cos[p * half + i] = Float(Foundation.cos(angle))
                sin[p * half + i] = Float(Foundation.sin(angle))
            }
        }
    }

    /// Rotates in place `heads` heads of every row; row t of a sequence sits at position t % seqLen.
    /// x: (rows, stride) with head h at columns [h·headDim, (h+1)·headDim).
    public func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, seqLen: Int, heads: Int, stride: Int, inverse: Bool = false) {
        let half = headDim / 2
        let sign: Float = inverse ? -1 : 1
        for r in 0..<rows {
            let pos = r % seqLen
            let c = cos.pointer + pos * half, s = sin.pointer + pos * half
            for h in 0..<heads {
                let v = x + r * stride + h * headDim
                var i = 0
                // Eight pairs at a time (the compiler will not, as v[i] and v[i + half] share a base).
                while i + 8 <= half {
                    let a = Vec.load8(v + i), b = Vec.load8(v + i + half)
                    let ci = Vec.load8(c + i), si = sign * Vec.load8(s + i)
                    Vec.store8(a * ci - b * si, v + i)
                    Vec.store8(b * ci + a * si, v + i + half)
                    i += 8
                }
                while i < half {
                    let a = v[i], b = v[i + half]
                    let si = sign * s[i]
                    v[i] = a * c[i] - b * si
                    v[i + half] = b * c[i] + a * si
                    i += 1
                }
            }
        }
    }
}
