/// SwiGLU, h = silu(a) ⊙ u with silu(a) = a·σ(a), forward and backward side by side.
///
/// The gate and up projections come out of one fused product, so a row of `gateUp` is
/// [a₀ … a_{F−1} | u₀ … u_{F−1}] (rows, 2F); h is (rows, F).
public enum SwiGLU {
    public static func forward(gateUp: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>, rows: Int, hidden f: Int) {
        for r in 0..<rows {
            let a = gateUp + r * 2 * f, u = a + f, hr = h + r * f
            for j in 0..<f { hr[j] = a[j] * sigmoid(a[j]) * u[j] }
        }
    }

    /// dh (rows, F) → dGateUp (rows, 2F), overwritten:
    ///   du = dh·silu(a),  da = dh·u·σ(a)·(1 + a·(1 − σ(a)))
    public static func backward(dh: UnsafePointer<Float>, gateUp: UnsafePointer<Float>, dGateUp: UnsafeMutablePointer<Float>, rows: Int, hidden f: Int) {
        for r in 0..<rows {
            let a = gateUp + r * 2 * f, u = a + f, g = dh + r * f
            let da = dGateUp + r * 2 * f, du = da + f
            for j in 0..<f {
                let s = sigmoid(a[j])
                du[j] = g[j] * a[j] * s
                da[j] = g[j] * u[j] * s * (1 + a[j] * (1 - s))
            }
        }
    }
}
