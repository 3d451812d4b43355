/// exp(x) on eight lanes at once, accurate to ~2 ulp over float32's range.
///
/// libm's `expf` is a scalar call that stops the loops around it from vectorizing; softmax, SiLU and
/// cross-entropy together call it a few million times a step. Range reduction x = n·ln2 + r with
/// |r| ≤ ln2/2 (ln2 split in two for exactness), a degree-6 polynomial for e^r, then 2^n built in the
/// exponent bits.
@inline(__always)
public func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let x = x.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.3))
    let n = (x * 1.442_695_04).rounded(.toNearestOrEven)
    var r = x - n * 0.693_359_375     // ln2, high part (exact in float)
    r = r - n * -2.121_944_4e-4        // ln2, low part
    var p: SIMD8<Float> = SIMD8(repeating: 1.987_569_1e-4)
    p = p * r + 1.398_199_9e-3
    p = p * r + 8.333_452e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_5e-1
    p = p * r + 5.000_000_1e-1
    p = p * (r * r) + r + 1
    let bits = (SIMD8<Int32>(n) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
}

/// exp(x) for one value with the same polynomial as `exp8`, so tails of vector loops agree bit for bit.
@inline(__always)
public func exp1(_ x: Float) -> Float { exp8(SIMD8(repeating: x))[0] }

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
