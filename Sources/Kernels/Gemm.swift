import COpenBLAS

/// Whether a GEMM operand is read as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Row-major matrix multiplication over the system BLAS library.
///
/// `c[m×n] = alpha · op(a) · op(b) + beta · c`, where `op(a)` is `m×k` and `op(b)` is `k×n`; leading
/// dimensions are the row strides of the matrices as stored. Large products are split into one block of rows
/// (or columns) per core; BLAS itself is kept on one thread so that Dispatch is the only thread pool.
public enum Gemm {
    private static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

    /// Below this many multiply-adds a product runs on one core: splitting costs more than it saves.
    static let parallelThreshold = 1 << 18

    public static func multiply(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        let work = m * n * max(k, 1)
        if work < parallelThreshold || Parallel.workers == 1 {
            serial(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc)
        } else if m >= n {
            // Split the rows of C: each block reads its own rows of op(A).
            Parallel.forRanges(m, minimumChunk: 16) { rows in
                let aBlock = transA == .none ? a + rows.lowerBound * lda : a + rows.lowerBound
                serial(transA, transB, m: rows.count, n: n, k: k, alpha: alpha, a: aBlock, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c + rows.lowerBound * ldc, ldc: ldc)
            }
        } else {
            // Split the columns of C: each block reads its own columns of op(B).
            Parallel.forRanges(n, minimumChunk: 16) { cols in
                let bBlock = transB == .none ? b + cols.lowerBound : b + cols.lowerBound * ldb
                serial(transA, transB, m: m, n: cols.count, k: k, alpha: alpha, a: a, lda: lda,
                       b: bBlock, ldb: ldb, beta: beta, c: c + cols.lowerBound, ldc: ldc)
            }
        }
    }

    /// The same product on the calling thread only; for use inside an already parallel loop.
    public static func serial(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = singleThreadedBLAS
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched when k is 0 only if beta is 1; make the empty product explicit.
            for i in 0..<m { scale(c + i * ldc, count: n, by: beta) }
            return
        }
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Name of the BLAS kernel family chosen for this CPU, for benchmark reports.
    public static var backendDescription: String {
        "OpenBLAS " + String(cString: openblas_get_corename())
    }

    private static func scale(_ p: UnsafeMutablePointer<Float>, count: Int, by beta: Float) {
        if beta == 0 {
            p.update(repeating: 0, count: count)
        } else {
            for i in 0..<count { p[i] *= beta }
        }
    }
}
