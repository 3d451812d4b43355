import Foundation

/// The machine's measured single-precision GEMM throughput: the denominator of every MFU figure.
///
/// Square products large enough to reach OpenBLAS's steady state, repeated for a fixed time at the
/// current BLAS thread count; the best rate seen is the peak. 512 reaches the rate of 1024 and more,
/// at one and two threads (within 1 %), for a quarter of the operands' memory: they stay resident
/// beside the model while a benchmark samples the peak between steps.
public enum SgemmPeak {
    /// One timed product at the current thread count, in FLOP/s (for interleaving with other work).
    /// An untimed product first brings the operands back into cache after the work in between.
    public static func sample(size n: Int = 512) -> Double {
        _ = measure(size: n, seconds: 0)
        return measure(size: n, seconds: 0)
    }

    public static func measure(size n: Int = 512, seconds: Double = 1.0) -> Double {
        let (a, b, c) = operands(size: n)
        let flops = 2.0 * Double(n) * Double(n) * Double(n)
        var best = 0.0
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(seconds * 1000))
        repeat {
            let t0 = clock.now
            GEMM.sgemm(transA: false, transB: true, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
            let d = clock.now - t0
            let s = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            best = max(best, flops / s)
        } while clock.now < deadline
        return best
    }

    /// The operands are made once and kept: a sample between two training steps should cost one
    /// product, not an allocation and a fresh random fill (which also moved the process's peak RSS).
    nonisolated(unsafe) private static var kept: (n: Int, a: FloatBuffer, b: FloatBuffer, c: FloatBuffer)?

    private static func operands(size n: Int) -> (FloatBuffer, FloatBuffer, FloatBuffer) {
        if let k = kept, k.n == n { return (k.a, k.b, k.c) }
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        var rng = SeededGenerator(seed: 1)
        rng.fillNormal(a.pointer, count: n * n, std: 1)
        rng.fillNormal(b.pointer, count: n * n, std: 1)
        kept = (n, a, b, c)
        return (a, b, c)
    }
}
