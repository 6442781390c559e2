import CDNNL

/// Whether a GEMM operand is read as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed

    var dnnl: CChar { self == .none ? CChar(UInt8(ascii: "N")) : CChar(UInt8(ascii: "T")) }
}

/// Row-major matrix multiplication over oneDNN.
///
/// `c[m×n] = alpha · op(a) · op(b) + beta · c`, where `op(a)` is `m×k` and `op(b)` is `k×n`; leading
/// dimensions are the row strides of the matrices as stored. Large products are split into one block of rows
/// (or columns) of C per core, or, when C is the smallest of the three matrices, into one block of the sum
/// over `k` per core, whose partial products are then added up (see `splitsSum`); oneDNN itself runs on one
/// thread per call so that `Parallel` is the only thread pool (idle OpenMP threads spinning after a GEMM
/// would slow the next parallel kernel down).
///
/// With `bias` (`n` values), every row of the result then gets `bias` added, `torch.nn.Linear`'s `+ b`: by the
/// thread that computed each block, right after it, instead of in a parallel loop of its own (the same
/// additions, so the same numbers).
///
/// With `.bfloat16` the operands are first rounded into bf16 scratch (round to nearest even) and multiplied by
/// oneDNN's bf16×bf16→fp32 kernel. On a CPU without bf16 dot-product instructions (AVX512_BF16), where oneDNN
/// 2.6 has no such kernel, the bf16 operands are widened back to fp32 and multiplied by sgemm instead: the same
/// product (each product of two bf16 values is exact in fp32, and both kernels accumulate in fp32), only slower
/// than fp32 (see `hasNativeBFloat16`). oneDNN allocates its packing workspace inside each call; nothing else
/// here allocates once the scratch has grown to the largest operand.
public enum Gemm {
    /// Below this many multiply-adds a product runs on one core: splitting costs more than it saves.
    static let parallelThreshold = 1 << 18

    public static func multiply(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil,
        precision: Precision = .float32
    ) {
        multiply(transA, transB, m: m, n: n, k: k, alpha: alpha, a: .float32(a), lda: lda, b: .float32(b), ldb: ldb,
                 beta: beta, c: c, ldc: ldc, bias: bias, precision: precision)
    }

    /// The same, with either operand possibly already rounded to bf16 (only for a bf16 product): a matrix that
    /// several products read is rounded once by its owner instead of once per product.
    public static func multiply(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: GemmOperand, lda: Int, b: GemmOperand, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil,
        precision: Precision = .float32
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // An empty sum: C = beta · C, made explicit rather than left to the library.
            for i in 0..<m { scale(c + i * ldc, count: n, by: beta) }
            if let bias { Elementwise.addBias(bias, to: c, rows: m, width: n, stride: ldc) }
            return
        }
        let parallel = m * n * k >= parallelThreshold && Parallel.workers > 1
        switch precision {
        case .float32, .int8:  // int8 quantises only the weights' products (Linear); others stay fp32
            guard case .float32(let a) = a, case .float32(let b) = b else {
                preconditionFailure("an fp32 product reads fp32 operands")
            }
            run(Product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                        b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bias: bias), parallel: parallel)
        case .bfloat16:
            // Round each fp32 operand once (on all cores when the product is split), then multiply in bf16.
            let scratch = GemmScratch.forThisThread
            let a16 = scratch.rounded(a, Operand(transA, rows: m, columns: k, ld: lda), slot: 0, parallel: parallel)
            let b16 = scratch.rounded(b, Operand(transB, rows: k, columns: n, ld: ldb), slot: 1, parallel: parallel)
            run(Product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a16.pointer,
                        lda: a16.ld, b: b16.pointer, ldb: b16.ld, beta: beta, c: c, ldc: ldc, bias: bias), parallel: parallel)
        }
    }

    /// Sets the calling thread's OpenMP thread count to one, as every GEMM call does again (the count is per
    /// thread). The first call on a thread allocates libgomp's per-thread state: the pool's workers make it when
    /// they start, not in the middle of a training step.
    static func prepareThisThread() {
        omp_set_num_threads(1)
    }

    /// The GEMM library, for benchmark reports.
    public static var backendDescription: String {
        let v = dnnl_version().pointee
        let bf16 = hasNativeBFloat16 ? "bf16 gemm_bf16bf16f32" : "bf16 widened to fp32 sgemm (no bf16 kernel on this CPU)"
        return "oneDNN \(v.major).\(v.minor).\(v.patch) (fp32 sgemm, \(bf16); one thread per call)"
    }

    /// Whether oneDNN multiplies bf16 matrices natively here (it needs AVX512_BF16 or AMX). Without, a
    /// `.bfloat16` product gives the same numbers through fp32 sgemm, and is slower than an fp32 product.
    public static let hasNativeBFloat16: Bool = {
        // Ask for a 1×1×1 product: oneDNN answers `dnnl_unimplemented` when the CPU lacks the instructions.
        var (a, b, c): (UInt16, UInt16, Float) = (0x3F80, 0x3F80, 0)  // 1 · 1
        prepareThisThread()
        let n = CChar(UInt8(ascii: "N"))
        let status = dnnl_gemm_bf16bf16f32(n, n, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1)
        return status == dnnl_success && c == 1
    }()

    /// Whether a parallel product splits its sum over `k` rather than C: when C is the smallest of the three
    /// matrices (`k` is the longest side), as in a weight gradient `Xᵀ · dY` summed over a batch's tokens.
    /// Each core then reads its own half of both operands, where a split of C has every core read all of one
    /// of them; the partial products cost one more pass over C. On a Zen 3 machine, MiniLM's weight gradients
    /// (384 × 1536 over 1700–3136 tokens) ran at 75–90 GFLOP/s on two cores split by C and at 117–131 split by
    /// the sum (oneDNN 2.6); a product over tokens (`m` the longest side) was slower split by the sum.
    /// The order of the additions depends on the number of cores, so the last bits of such a product do too.
    package static func splitsSum(m: Int, n: Int, k: Int) -> Bool {
        k >= max(m, n) && k >= 2 * minimumSumChunk
    }

    /// The shortest block of the sum a core is given.
    static let minimumSumChunk = 64

    /// Calls `body` on blocks of `rows` across the cores when a product of `work` multiply-adds is worth
    /// splitting (`parallelThreshold`), else once on all of them on the calling thread: how the products that
    /// split only by rows (packed weights, int8) share out their work.
    static func splitRows<Body: Parallel.RangeBody>(_ rows: Int, work: Int, minimumChunk: Int, _ body: Body) {
        if work >= parallelThreshold && Parallel.workers > 1 {
            Parallel.forRanges(rows, minimumChunk: minimumChunk, body)
        } else {
            body(0..<rows)
        }
    }

    /// Runs a product on the calling thread, or split into blocks across the cores.
    private static func run<Element: GemmInput>(_ product: Product<Element>, parallel: Bool) {
        guard parallel else {
            return product.rows(0..<product.m)
        }
        if splitsSum(m: product.m, n: product.n, k: product.k) {
            let chunks = min(Parallel.workers, product.k / minimumSumChunk)
            let partials = GemmScratch.forThisThread.partialSums((chunks - 1) * product.m * product.n)
            Parallel.forEach(chunks, product.sumChunks(chunks, partials: partials))
            return Parallel.forRanges(product.m, minimumChunk: 16, product.addingPartials(chunks - 1, partials))
        }
        // Split the longer side of C, so that each block reads its own rows of op(A) or columns of op(B).
        if product.m >= product.n {
            Parallel.forRanges(product.m, minimumChunk: 16, product.rows)
        } else {
            Parallel.forRanges(product.n, minimumChunk: 16, product.columns)
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

/// A product's operand as stored, its rows `ld` apart: fp32, or already rounded to bf16 (for a bf16 product).
public enum GemmOperand {
    case float32(UnsafePointer<Float>)
    case bfloat16(UnsafePointer<BFloat16>)
}

/// An element type the GEMM library multiplies (always accumulating into fp32).
protocol GemmInput: BitwiseCopyable {
    /// `x` in this format: itself for `Float`, rounded to nearest even for `BFloat16`.
    init(_ x: Float)


    /// One single-threaded row-major product.
    static func multiply(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)
}

extension Float: GemmInput {
    static func multiply(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        Gemm.prepareThisThread()
        let status = dnnl_sgemm(transA.dnnl, transB.dnnl, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda),
                                b, Int64(ldb), beta, c, Int64(ldc))
        precondition(status == dnnl_success, "dnnl_sgemm failed (status \(status.rawValue)) for \(m)×\(k)×\(n)")
    }
}

extension BFloat16: GemmInput {
    static func multiply(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<BFloat16>, lda: Int, b: UnsafePointer<BFloat16>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard Gemm.hasNativeBFloat16 else {
            return multiplyWidened(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                                   beta: beta, c: c, ldc: ldc)
        }
        Gemm.prepareThisThread()
        let status = dnnl_gemm_bf16bf16f32(
            transA.dnnl, transB.dnnl, Int64(m), Int64(n), Int64(k), alpha,
            UnsafeRawPointer(a).assumingMemoryBound(to: UInt16.self), Int64(lda),
            UnsafeRawPointer(b).assumingMemoryBound(to: UInt16.self), Int64(ldb), beta, c, Int64(ldc))
        precondition(status == dnnl_success, "dnnl_gemm_bf16bf16f32 failed (status \(status.rawValue)) for \(m)×\(k)×\(n)")
    }

    /// The same product where oneDNN has no bf16 kernel: both operands widened to fp32 (exactly), then sgemm.
    package static func multiplyWidened(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<BFloat16>, lda: Int, b: UnsafePointer<BFloat16>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let scratch = GemmScratch.forThisThread
        let a32 = scratch.widened(a, Operand(transA, rows: m, columns: k, ld: lda), slot: 0)
        let b32 = scratch.widened(b, Operand(transB, rows: k, columns: n, ld: ldb), slot: 1)
        Float.multiply(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a32.pointer, lda: a32.ld,
                       b: b32.pointer, ldb: b32.ld, beta: beta, c: c, ldc: ldc)
    }
}

/// The arguments of one product, and its blocks of rows or columns of C.
private struct Product<Element: GemmInput> {
    let transA: Transpose, transB: Transpose
    let m: Int, n: Int, k: Int
    let alpha: Float
    let a: UnsafePointer<Element>, lda: Int
    let b: UnsafePointer<Element>, ldb: Int
    let beta: Float
    let c: UnsafeMutablePointer<Float>, ldc: Int
    /// Added to each row of C once its block is computed (`Gemm.multiply(bias:)`).
    let bias: UnsafePointer<Float>?

    var rows: Rows { Rows(product: self) }
    var columns: Columns { Columns(product: self) }

    func sumChunks(_ chunks: Int, partials: UnsafeMutablePointer<Float>) -> SumChunks {
        SumChunks(product: self, chunks: chunks, partials: partials)
    }

    func addingPartials(_ count: Int, _ partials: UnsafeMutablePointer<Float>) -> AddPartials {
        AddPartials(c: c, ldc: ldc, n: n, partials: UnsafePointer(partials), count: count, partialSize: m * n, bias: bias)
    }

    struct Rows: Parallel.RangeBody {
        let product: Product

        func callAsFunction(_ rows: Range<Int>) {
            let p = product
            let aBlock = p.transA == .none ? p.a + rows.lowerBound * p.lda : p.a + rows.lowerBound
            let cBlock = p.c + rows.lowerBound * p.ldc
            Element.multiply(p.transA, p.transB, m: rows.count, n: p.n, k: p.k, alpha: p.alpha, a: aBlock,
                             lda: p.lda, b: p.b, ldb: p.ldb, beta: p.beta, c: cBlock, ldc: p.ldc)
            if let bias = p.bias { Elementwise.addBias(bias, to: cBlock, rows: rows.count, width: p.n, stride: p.ldc) }
        }
    }

    struct Columns: Parallel.RangeBody {
        let product: Product

        func callAsFunction(_ columns: Range<Int>) {
            let p = product
            let bBlock = p.transB == .none ? p.b + columns.lowerBound : p.b + columns.lowerBound * p.ldb
            Element.multiply(p.transA, p.transB, m: p.m, n: columns.count, k: p.k, alpha: p.alpha, a: p.a,
                             lda: p.lda, b: bBlock, ldb: p.ldb, beta: p.beta, c: p.c + columns.lowerBound, ldc: p.ldc)
            if let bias = p.bias {
                Elementwise.addBias(bias + columns.lowerBound, to: p.c + columns.lowerBound, rows: p.m,
                                    width: columns.count, stride: p.ldc)
            }
        }
    }
}

extension Product {
    /// Block `chunk` of the sum over `k`: the first writes `alpha · op(A) op(B) + beta · C` over its part of
    /// `k` into C; each other writes `alpha · op(A) op(B)` over its part into its own `m × n` partial result.
    struct SumChunks: Parallel.IndexBody {
        let product: Product
        let chunks: Int
        let partials: UnsafeMutablePointer<Float>

        func callAsFunction(_ chunk: Int) {
            let p = product
            let part = p.k * chunk / chunks ..< p.k * (chunk + 1) / chunks
            let aBlock = p.transA == .none ? p.a + part.lowerBound : p.a + part.lowerBound * p.lda
            let bBlock = p.transB == .none ? p.b + part.lowerBound * p.ldb : p.b + part.lowerBound
            let (beta, c, ldc) = chunk == 0 ? (p.beta, p.c, p.ldc) : (0, partials + (chunk - 1) * p.m * p.n, p.n)
            Element.multiply(p.transA, p.transB, m: p.m, n: p.n, k: part.count, alpha: p.alpha, a: aBlock,
                             lda: p.lda, b: bBlock, ldb: p.ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Adds the partial results of `SumChunks` into rows of C, in chunk order, then the bias.
    struct AddPartials: Parallel.RangeBody {
        let c: UnsafeMutablePointer<Float>, ldc: Int, n: Int
        let partials: UnsafePointer<Float>
        let count: Int, partialSize: Int
        let bias: UnsafePointer<Float>?

        func callAsFunction(_ rows: Range<Int>) {
            for i in rows {
                let row = c + i * ldc
                for p in 0..<count {
                    let partial = partials + p * partialSize + i * n
                    for j in 0..<n { row[j] += partial[j] }
                }
                if let bias { Elementwise.addBias(bias, to: row, rows: 1, width: n, stride: n) }
            }
        }
    }
}

/// A GEMM operand as stored: `op(X)` is `rows × columns`, so the stored matrix is that or its transpose.
struct Operand {
    let storedRows: Int
    let storedColumns: Int
    let ld: Int

    init(_ transpose: Transpose, rows: Int, columns: Int, ld: Int) {
        (storedRows, storedColumns) = transpose == .none ? (rows, columns) : (columns, rows)
        self.ld = ld
    }
}
