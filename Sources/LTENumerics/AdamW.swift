import Foundation

/// The AdamW update (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments.
///   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
///   θ ← θ − lr·( m̂ / (√v̂ + ε) + λθ ),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
public enum AdamWKernel {
    public static func step(
        param: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>,
        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count n: Int,
        lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step t: Int
    ) {
        let bc1 = 1 - pow(beta1, Float(t))
        let bc2 = 1 - pow(beta2, Float(t))
        let stepSize = lr / bc1
        let invSqrtBc2 = 1 / bc2.squareRoot()
        let decay = lr * weightDecay
        for i in 0..<n {
            let g = grad[i]
            let mi = beta1 * m[i] + (1 - beta1) * g
            let vi = beta2 * v[i] + (1 - beta2) * g * g
            m[i] = mi
            v[i] = vi
            param[i] -= stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps) + decay * param[i]
        }
    }
}
