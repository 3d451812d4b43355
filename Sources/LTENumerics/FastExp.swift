/// exp(x) in float32, accurate to ~2 ulp, written as straight-line scalar code so that loops
/// calling it vectorize (libm's `expf` is an opaque call that keeps softmax and SiLU scalar, and
/// Swift's generic SIMD conversions compile to per-lane code on Linux).
///
/// Range reduction x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so n·ln2 is exact), a degree-6
/// polynomial for e^r, and 2^n assembled in the exponent bits. Rounding to the nearest integer uses
/// the 1.5·2²³ trick, whose low mantissa bits then hold n itself.
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let x = min(max(x, -87.3), 88.3)
    let shifter: Float = 12_582_912          // 1.5 · 2²³
    let t = x * 1.442_695_04 + shifter
    let n = t - shifter
    var r = x - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p: Float = 1.987_569_1e-4
    p = p * r + 1.398_199_9e-3
    p = p * r + 8.333_452e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_5e-1
    p = p * r + 5.000_000_1e-1
    p = p * (r * r) + r + 1
    let k = Int32(bitPattern: t.bitPattern) &- Int32(bitPattern: shifter.bitPattern)
    return p * Float(bitPattern: UInt32(bitPattern: (k &+ 127) &* 8_388_608))
}

/// σ(x) = 1 / (1 + e^−x)
@inline(__always)
public func sigmoid(_ x: Float) -> Float { 1 / (1 + fastExp(-x)) }
