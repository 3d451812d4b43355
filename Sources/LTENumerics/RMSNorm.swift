import Foundation

/// RMSNorm, y = x / sqrt(mean(x²) + eps) ⊙ g, forward and backward side by side.
public enum RMSNorm {
    /// x (rows, dim) → y (rows, dim); saves rstd (rows) for the backward pass.
    public static func forward(
        x: UnsafePointer<Float>, gain: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, yr = y + r * dim
            let ss = Vec.dot(xr, xr, count: dim)
            let s = 1 / (ss / Float(dim) + eps).squareRoot()
            rstd[r] = s
            for j in 0..<dim { yr[j] = xr[j] * s * gain[j] }
        }
    }

    /// dy (rows, dim) → dx += ∂L/∂x, dgain += ∂L/∂g.
    ///   dx = rstd·(dy⊙g) − x·rstd³/dim · Σⱼ dyⱼ gⱼ xⱼ
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, gain: UnsafePointer<Float>,
        rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dgain: UnsafeMutablePointer<Float>,
        rows: Int, dim: Int
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, dyr = dy + r * dim, dxr = dx + r * dim
            let s = rstd[r]
            var dot: Float = 0
            for j in 0..<dim { dot += dyr[j] * gain[j] * xr[j] }
            let c = dot * s * s * s / Float(dim)
            for j in 0..<dim {
                dxr[j] += s * dyr[j] * gain[j] - c * xr[j]
                dgain[j] += dyr[j] * xr[j] * s
            }
        }
    }
}
