/// SwiGLU, h = silu(a) ⊙ u with silu(a) = a·σ(a), forward and backward side by side.
///
/// The gate and up projections come out of one fused product, so a row of `gateUp` is
/// [a₀ … a_{F−1} | u₀ … u_{F−1}] (rows, 2F); h is (rows, F).
public enum SwiGLU {
    public static func forward(gateUp: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>, rows: Int, hidden f: Int) {
        for r in 0..<rows {
            let a = gateUp + r * 2 * f, u = a + f, hr = h + r * f
            var j = 0
            while j + 8 <= f {
                let av = load8(a + j)
                let sig = 1 / (1 + exp8(-av))
                store8(av * sig * load8(u + j), hr + j)
                j += 8
            }
            while j < f {
                let sig = 1 / (1 + exp1(-a[j]))
                hr[j] = a[j] * sig * u[j]
                j += 1
            }
        }
    }

    /// dh (rows, F) → dGateUp (rows, 2F), overwritten:
    ///   du = dh·silu(a),  da = dh·u·σ(a)·(1 + a·(1 − σ(a)))
    public static func backward(dh: UnsafePointer<Float>, gateUp: UnsafePointer<Float>, dGateUp: UnsafeMutablePointer<Float>, rows: Int, hidden f: Int) {
        for r in 0..<rows {
            let a = gateUp + r * 2 * f, u = a + f, dhr = dh + r * f
            let da = dGateUp + r * 2 * f, du = da + f
            var j = 0
            while j + 8 <= f {
                let av = load8(a + j), uv = load8(u + j), g = load8(dhr + j)
                let sig = 1 / (1 + exp8(-av))
                store8(g * av * sig, du + j)
                store8(g * uv * sig * (1 + av * (1 - sig)), da + j)
                j += 8
            }
            while j < f {
                let sig = 1 / (1 + exp1(-a[j]))
                du[j] = dhr[j] * a[j] * sig
                da[j] = dhr[j] * u[j] * sig * (1 + a[j] * (1 - sig))
                j += 1
            }
        }
    }
}
