import Testing
import Kernels

/// `Gemm` against a naive product in Double, in both precisions, every transpose, padded leading dimensions,
/// and sizes that are and are not split across cores.
@Suite struct GemmTests {
    /// `alpha · op(A) · op(B) + beta · C` in Double, reading each operand through `element` (identity, or
    /// rounding to bf16).
    func reference(_ ta: Transpose, _ tb: Transpose, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
                   b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int, element: (Float) -> Float) -> [Double] {
        var result = c.map(Double.init)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let aip = ta == .none ? a[i * lda + p] : a[p * lda + i]
                    let bpj = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                    sum += Double(element(aip)) * Double(element(bpj))
                }
                result[i * ldc + j] = Double(alpha) * sum + Double(beta) * Double(c[i * ldc + j])
            }
        }
        return result
    }

    @Test(arguments: Precision.training)
    func transposesPaddingAndSplits(_ precision: Precision) {
        let rounded: (Float) -> Float = precision == .float32 ? { $0 } : { BFloat16($0).float }
        // (300, 40, 50) and (40, 300, 50) are split across cores by rows and by columns, (40, 30, 600) by its
        // sum over k; (7, 5, 3) is not split.
        #expect(!Gemm.splitsSum(m: 300, n: 40, k: 50) && !Gemm.splitsSum(m: 40, n: 300, k: 50))
        #expect(!Gemm.splitsSum(m: 300, n: 40, k: 299), "the sum is split only when k is the longest side")
        #expect(Gemm.splitsSum(m: 40, n: 30, k: 600))
        for (m, n, k) in [(300, 40, 50), (40, 300, 50), (40, 30, 600), (7, 5, 3)] {
            var random = TestRandom(seed: UInt64(m * n))
            for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
                for padding in [0, 3] {
                    let lda = (ta == .none ? k : m) + padding, ldb = (tb == .none ? n : k) + padding, ldc = n + padding
                    let a = random.array((ta == .none ? m : k) * lda), b = random.array((tb == .none ? k : n) * ldb)
                    var c = random.array(m * ldc)
                    let expected = reference(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                                             beta: 2, c: c, ldc: ldc, element: rounded)
                    let exact = reference(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                                          beta: 2, c: c, ldc: ldc, element: { $0 })
                    let before = c
                    Gemm.multiply(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 2,
                                  c: &c, ldc: ldc, precision: precision)
                    var worst = 0.0, fromExact = 0.0, padTouched = false
                    for i in 0..<m {
                        for j in 0..<ldc {
                            if j >= n { padTouched = padTouched || c[i * ldc + j] != before[i * ldc + j]; continue }
                            worst = max(worst, abs(Double(c[i * ldc + j]) - expected[i * ldc + j]))
                            fromExact = max(fromExact, abs(Double(c[i * ldc + j]) - exact[i * ldc + j]))
                        }
                    }
                    // bf16 products of bf16 inputs are exact in fp32: only the fp32 accumulation differs.
                    #expect(worst < 1e-4, "\(precision) \(m)×\(n)×\(k) \(ta) \(tb) padding \(padding)")
                    #expect(!padTouched, "columns past n of C are left alone")
                    if precision == .bfloat16 {
                        // Farther from the unrounded product than the tolerance above: the two are told apart.
                        #expect(fromExact > 1e-4, "the inputs really were rounded to bf16")
                    }
                }
            }
        }
    }

    @Test func operandsRoundedByTheCallerGiveTheSameProduct() {
        // Split and unsplit sizes, padded rows: a bf16 operand handed over already rounded (rows `ld` apart)
        // multiplies exactly as the same fp32 operand rounded inside the product.
        for (m, n, k) in [(300, 40, 50), (7, 5, 3)] {
            var random = TestRandom(seed: UInt64(m + n))
            let (lda, ldb) = (k + 3, k + 1)
            let a = random.array(m * lda), b = random.array(n * ldb)
            let a16 = a.map(BFloat16.init), b16 = b.map(BFloat16.init)
            var inside = [Float](repeating: 0, count: m * n)
            Gemm.multiply(.none, .transposed, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: &inside, ldc: n,
                          precision: .bfloat16)
            for rounded in [(true, false), (false, true), (true, true)] {
                var outside = [Float](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                    a16.withUnsafeBufferPointer { a16 in b16.withUnsafeBufferPointer { b16 in
                        Gemm.multiply(.none, .transposed, m: m, n: n, k: k,
                                      a: rounded.0 ? .bfloat16(a16.baseAddress!) : .float32(a.baseAddress!), lda: lda,
                                      b: rounded.1 ? .bfloat16(b16.baseAddress!) : .float32(b.baseAddress!), ldb: ldb,
                                      c: &outside, ldc: n, precision: .bfloat16)
                    } }
                } }
                #expect(outside == inside, "\(m)×\(n)×\(k), rounded by the caller: A \(rounded.0), B \(rounded.1)")
            }
        }
    }

    @Test func widenedBFloat16ProductsWhereTheCPUHasNoBFloat16Kernel() {
        // The fallback is what every bf16 product runs on such a CPU; here it is checked on any CPU.
        let (m, n, k) = (9, 7, 33)
        var random = TestRandom(seed: 17)
        for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
            let lda = (ta == .none ? k : m) + 2, ldb = (tb == .none ? n : k) + 1, ldc = n + 3
            let a = random.array((ta == .none ? m : k) * lda), b = random.array((tb == .none ? k : n) * ldb)
            var c = random.array(m * ldc)
            let expected = reference(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                                     beta: 2, c: c, ldc: ldc, element: { BFloat16($0).float })
            let a16 = a.map(BFloat16.init), b16 = b.map(BFloat16.init)
            BFloat16.multiplyWidened(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a16, lda: lda, b: b16, ldb: ldb,
                                     beta: 2, c: &c, ldc: ldc)
            var worst = 0.0
            for i in 0..<m { for j in 0..<n { worst = max(worst, abs(Double(c[i * ldc + j]) - expected[i * ldc + j])) } }
            #expect(worst < 1e-4, "\(ta) \(tb)")
        }
    }

    @Test(arguments: Precision.training)
    func aBiasIsAddedToEachRowOfTheProduct(_ precision: Precision) {
        // The product with `bias` is the product without, then `+ bias[j]` in fp32, bit for bit, however it is
        // split (rows, columns, the sum over k, not at all, an empty sum); padding columns are left alone.
        for (m, n, k) in [(300, 40, 50), (40, 300, 50), (40, 30, 600), (7, 5, 3), (4, 6, 0)] {
            var random = TestRandom(seed: UInt64(m + 7 * n))
            let ldc = n + 2
            let a = random.array(m * k), b = random.array(k * n), bias = random.array(n), c = random.array(m * ldc)
            var plain = c, biased = c
            Gemm.multiply(.none, .none, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 0.5, c: &plain, ldc: ldc,
                          precision: precision)
            Gemm.multiply(.none, .none, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 0.5, c: &biased, ldc: ldc,
                          bias: bias, precision: precision)
            for i in 0..<m {
                for j in 0..<ldc {
                    let expected = j < n ? plain[i * ldc + j] + bias[j] : c[i * ldc + j]
                    #expect(biased[i * ldc + j] == expected, "\(precision) \(m)×\(n)×\(k) at [\(i), \(j)]")
                }
            }
        }
    }

    @Test func emptyInnerDimensionScalesC() {
        var c: [Float] = [1, 2, 3, 4]
        Gemm.multiply(.none, .none, m: 2, n: 2, k: 0, a: [], lda: 1, b: [], ldb: 2, beta: 0.5, c: &c, ldc: 2)
        #expect(c == [0.5, 1, 1.5, 2])
    }

    @Test func bfloat16RoundsToNearestEven() {
        func bits(_ x: Float) -> UInt16 { BFloat16(x).bitPattern }
        #expect(bits(1) == 0x3F80)
        #expect(bits(-0.0) == 0x8000)
        #expect(bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80, "a tie rounds to the even neighbour, down")
        #expect(bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82, "a tie rounds to the even neighbour, up")
        #expect(bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81, "above half way rounds up")
        #expect(bits(Float(bitPattern: 0x3F80_7FFF)) == 0x3F80, "below half way rounds down")
        #expect(bits(.infinity) == 0x7F80)
        #expect(bits(.greatestFiniteMagnitude) == 0x7F80, "overflows to infinity, as round-to-nearest does")
        #expect(BFloat16(.nan).float.isNaN)
        #expect(BFloat16(Float(bitPattern: 0x7F80_0001)).float.isNaN, "a NaN with only low mantissa bits stays NaN")
        #expect(BFloat16(3.140625).float == 3.140625, "values with 8 significant bits are exact")
    }
}
