/// QLoRA's NormalFloat-4 code book (Dettmers et al. 2023, appendix E; bitsandbytes' NF4 table): the
/// 16 values are quantiles of a standard normal, rescaled to [−1, 1], with an exact zero. A block of
/// weights divided by its absolute maximum is coded as the index of the nearest value.
public enum NormalFloat4 {
    public static let values: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// The midpoints between neighbouring values: code c covers [midpoints[c−1], midpoints[c]).
    /// Comparing against them (instead of searching for the nearest value) makes the choice
    /// deterministic on ties: a value exactly on a midpoint takes the upper code.
    public static let midpoints: [Float] = (0..<15).map { (values[$0] + values[$0 + 1]) / 2 }

    /// The code of x ∈ [−1, 1] (already divided by its block's absolute maximum): the number of
    /// midpoints at or below x, found by a four-step binary search over `midpoints` (15 values).
    @inline(__always)
    public static func code(_ x: Float, midpoints m: UnsafePointer<Float>) -> UInt8 {
        var c = x >= m[7] ? 8 : 0
        c += x >= m[c + 3] ? 4 : 0
        c += x >= m[c + 1] ? 2 : 0
        c += x >= m[c] ? 1 : 0
        return UInt8(c)
    }

    /// Half the widest gap between neighbouring values: the largest error of one code, relative to
    /// its block's absolute maximum (between 0.7230 and 1.0).
    public static let maxRelativeError: Float = (0..<15).map { (values[$0 + 1] - values[$0]) / 2 }.max()!
}
