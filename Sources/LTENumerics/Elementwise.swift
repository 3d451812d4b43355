/// Small vector kernels shared by the layers: residual adds, scaling, reductions.
/// Plain pointer loops: with -O and a target CPU, LLVM turns each into AVX2 code.
public enum Vec {
    /// Eight floats from `p` as one AVX register (no alignment needed), and back.
    @inline(__always)
    public static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    public static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Σ xᵢ and max xᵢ in eight lanes: with one accumulator a float reduction stays scalar (the
    /// compiler may not reassociate it), and so would every loop that carries one.
    @inline(__always)
    public static func total(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n { acc += load8(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    @inline(__always)
    public static func maximum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n { acc = pointwiseMax(acc, load8(x + i)); i += 8 }
        var m = acc.max()
        while i < n { m = max(m, x[i]); i += 1 }
        return m
    }

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

    /// Σ xᵢyᵢ with eight independent partial sums: float addition is not associative, so the
    /// compiler will not split a single-accumulator loop into vector lanes by itself.
    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
        var i = 0
        while i + 8 <= n {
            s0 += x[i] * y[i]; s1 += x[i + 1] * y[i + 1]; s2 += x[i + 2] * y[i + 2]; s3 += x[i + 3] * y[i + 3]
            s4 += x[i + 4] * y[i + 4]; s5 += x[i + 5] * y[i + 5]; s6 += x[i + 6] * y[i + 6]; s7 += x[i + 7] * y[i + 7]
            i += 8
        }
        while i < n { s0 += x[i] * y[i]; i += 1 }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    }

    /// Σ x², in float blocks of 4096 summed in double, so long buffers (all gradients) stay accurate.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            let len = min(4096, n - i)
            total += Double(dot(x + i, x + i, count: len))
            i += len
        }
        return total
    }
}

extension Vec {
    /// True when every value is exactly zero (either sign).
    public static func allZero(_ x: UnsafePointer<Float>, count n: Int) -> Bool {
        var any = false
        for i in 0..<n { any = any || x[i] != 0 }
        return !any
    }
}
