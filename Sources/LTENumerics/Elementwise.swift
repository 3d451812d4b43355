/// Small vector kernels shared by the layers: residual adds, scaling, reductions.
/// Plain pointer loops: with -O and a target CPU, LLVM turns each into AVX2 code.
public enum Vec {
    /// y += x
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// z = x + y
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { z[i] = x[i] + y[i] }
    }

    /// y += a·x
    @inline(__always)
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { y[i] += a * x[i] }
    }

    /// x *= a
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, by a: Float, count n: Int) {
        for i in 0..<n { x[i] *= a }
    }

    /// Σ x², accumulated in double (eight float lanes, then widened) so long sums stay exact enough.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        var acc = SIMD8<Float>(repeating: 0)
        var total = 0.0
        var i = 0
        while i + 8 <= n {
            let v = load8(x + i)
            acc += v * v
            i += 8
            if i & 4095 == 0 { total += Double(acc.sum()); acc = .zero }
        }
        total += Double(acc.sum())
        while i < n { total += Double(x[i] * x[i]); i += 1 }
        return total
    }

    /// True when every value is finite (no NaN, no ±Inf).
    public static func allFinite(_ x: UnsafePointer<Float>, count n: Int) -> Bool {
        var bad = false
        for i in 0..<n { bad = bad || !x[i].isFinite }
        return !bad
    }
}
