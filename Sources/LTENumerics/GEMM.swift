import CBLAS

/// Row-major matrix products over OpenBLAS, named by what they compute so call sites read like the math.
///
/// Shapes follow the model's convention: activations are (rows, features) row-major; weights are
/// stored [out, in] like Hugging Face, so a linear layer is `Y = X Wᵀ`.
public enum GEMM {
    /// C (m×n) = alpha · op(A) · op(B) + beta · C, row-major, with explicit leading dimensions.
    @inline(__always)
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Y (rows×out) = X (rows×in) · Wᵀ, W stored [out, in]: a linear layer's forward.
    @inline(__always)
    public static func linear(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, beta: Float = 0, alpha: Float = 1,
        ldx: Int? = nil, ldy: Int? = nil
    ) {
        sgemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures, alpha: alpha,
              a: x, lda: ldx ?? inFeatures, b: w, ldb: inFeatures, beta: beta, c: y, ldc: ldy ?? outFeatures)
    }

    /// dX (rows×in) (+)= dY (rows×out) · W: a linear layer's input gradient.
    @inline(__always)
    public static func linearInputGrad(
        _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, beta: Float = 0, alpha: Float = 1,
        lddy: Int? = nil, lddx: Int? = nil
    ) {
        sgemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures, alpha: alpha,
              a: dy, lda: lddy ?? outFeatures, b: w, ldb: inFeatures, beta: beta, c: dx, ldc: lddx ?? inFeatures)
    }

    /// dW (out×in) (+)= dYᵀ (out×rows) · X (rows×in): a linear layer's weight gradient.
    @inline(__always)
    public static func linearWeightGrad(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, beta: Float = 1, alpha: Float = 1,
        lddy: Int? = nil, ldx: Int? = nil
    ) {
        sgemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows, alpha: alpha,
              a: dy, lda: lddy ?? outFeatures, b: x, ldb: ldx ?? inFeatures, beta: beta, c: dw, ldc: inFeatures)
    }
}

/// OpenBLAS's own thread pool. Global to the process: set it once per phase, not per call.
public enum BLASThreads {
    public static var count: Int { Int(openblas_get_num_threads()) }
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var corename: String { String(cString: openblas_get_corename()) }
}
