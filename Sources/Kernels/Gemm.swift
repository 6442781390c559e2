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
/// (or columns) per core; BLAS itself is kept on one thread so that `Parallel` is the only thread pool.
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
        } else {
            // Split the longer side of C, so that each block reads its own rows of op(A) or columns of op(B).
            let product = Product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            if m >= n {
                Parallel.forRanges(m, minimumChunk: 16, product.rows)
            } else {
                Parallel.forRanges(n, minimumChunk: 16, product.columns)
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

    /// The arguments of one `multiply`, and its blocks of rows or columns of C.
    private struct Product {
        let transA: Transpose, transB: Transpose
        let m: Int, n: Int, k: Int
        let alpha: Float
        let a: UnsafePointer<Float>, lda: Int
        let b: UnsafePointer<Float>, ldb: Int
        let beta: Float
        let c: UnsafeMutablePointer<Float>, ldc: Int

        var rows: Rows { Rows(product: self) }
        var columns: Columns { Columns(product: self) }

        struct Rows: Parallel.RangeBody {
            let product: Product

            func callAsFunction(_ rows: Range<Int>) {
                let p = product
                let aBlock = p.transA == .none ? p.a + rows.lowerBound * p.lda : p.a + rows.lowerBound
                serial(p.transA, p.transB, m: rows.count, n: p.n, k: p.k, alpha: p.alpha, a: aBlock, lda: p.lda,
                       b: p.b, ldb: p.ldb, beta: p.beta, c: p.c + rows.lowerBound * p.ldc, ldc: p.ldc)
            }
        }

        struct Columns: Parallel.RangeBody {
            let product: Product

            func callAsFunction(_ columns: Range<Int>) {
                let p = product
                let bBlock = p.transB == .none ? p.b + columns.lowerBound : p.b + columns.lowerBound * p.ldb
                serial(p.transA, p.transB, m: p.m, n: columns.count, k: p.k, alpha: p.alpha, a: p.a, lda: p.lda,
                       b: bBlock, ldb: p.ldb, beta: p.beta, c: p.c + columns.lowerBound, ldc: p.ldc)
            }
        }
    }

    private static func scale(_ p: UnsafeMutablePointer<Float>, count: Int, by beta: Float) {
        if beta == 0 {
            p.update(repeating: 0, count: count)
        } else {
            for i in 0..<count { p[i] *= beta }
        }
    }
}
