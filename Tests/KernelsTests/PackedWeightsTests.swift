import Kernels
import CDNNL
import Foundation
import Testing

/// Products over packed weights: fp32 within the rounding bound of a sum of `k` products (oneDNN's unpacked
/// call picks other kernels for some shapes, one row for instance, so the two may differ in the last bits),
/// int8 exactly the integer GEMM's.
@Suite struct PackedWeightsTests {
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
        }
    }

    /// Row counts on one thread and split across the cores, a strided input (the pooler's first tokens), and
    /// MiniLM's three shapes of weights.
    @Test(arguments: [(1, 16, 8, 16), (7, 384, 384, 384), (37, 384, 1536, 384), (300, 1536, 384, 1536),
                      (640, 384, 384, 384), (12, 384, 384, 5 * 384)])
    func fp32ProductsAreTheProductsToRounding(rows: Int, inFeatures k: Int, outFeatures n: Int, ldx: Int) {
        let x = values(rows * ldx, seed: 1), w = values(n * k, seed: 2)
        var y = [Float](repeating: .nan, count: rows * n)
        let packed = PackedWeights(kind: .float32, outFeatures: n, inFeatures: k)
        w.withUnsafeBufferPointer { wp in
            packed.pack(wp.baseAddress!)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { packed.multiply(xp.baseAddress!, rows: rows, ldx: ldx, $0.baseAddress!, ldy: n) }
            }
        }
        #expect(y.allSatisfy { $0.isFinite })
        // |computed − exact| ≤ k · u · Σ|x·w| bounds any order of fp32 sums of k products (u = 2⁻²⁴).
        var worst = 0.0
        for i in 0..<rows {
            for j in 0..<n {
                var exact = 0.0, magnitude = 0.0
                for c in 0..<k {
                    let product = Double(x[i * ldx + c]) * Double(w[j * k + c])
                    exact += product
                    magnitude += abs(product)
                }
                worst = max(worst, abs(Double(y[i * n + j]) - exact) / (Double(k) * 0x1p-24 * magnitude))
            }
        }
        #expect(worst <= 1, "error over the rounding bound: \(worst)")
    }

    /// With a bias, each row is the product without it plus the bias, bit for bit, on one thread and split.
    @Test(arguments: [(7, 384, 384), (640, 384, 1536)])
    func aBiasIsAddedToEachRow(rows: Int, inFeatures k: Int, outFeatures n: Int) {
        let x = values(rows * k, seed: 5), w = values(n * k, seed: 6), bias = values(n, seed: 7)
        var plain = [Float](repeating: .nan, count: rows * n), biased = plain
        let packed = PackedWeights(kind: .float32, outFeatures: n, inFeatures: k)
        w.withUnsafeBufferPointer { packed.pack($0.baseAddress!) }
        packed.multiply(x, rows: rows, ldx: k, &plain, ldy: n)
        packed.multiply(x, rows: rows, ldx: k, &biased, ldy: n, bias: bias)
        #expect(biased == (0..<rows * n).map { plain[$0] + bias[$0 % n] })
    }

    /// The integer product over packed s8 weights against `dnnl_gemm_u8s8s32` on the same operands: a block of
    /// rows, less, and more (whole blocks and a remainder, each by its own primitive).
    @Test(arguments: [(1, 16, 8), (37, 384, 384), (64, 384, 1536), (33, 1536, 384), (PackedWeights.int8RowBlock, 384, 2),
                      (2 * PackedWeights.int8RowBlock + 45, 384, 1536)])
    func int8ProductsEqualTheIntegerGemm(rows: Int, inFeatures k: Int, outFeatures n: Int) {
        let x = values(rows * k, seed: 3).map { UInt8(($0 + 1) * 127.5) }
        let w = values(n * k, seed: 4).map { Int8($0 * 127) }
        var expected = [Int32](repeating: -1, count: rows * n), packedResult = expected
        var offset: Int32 = 0
        let status = dnnl_gemm_u8s8s32(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), CChar(UInt8(ascii: "F")),
                                       Int64(rows), Int64(n), Int64(k), 1, x, Int64(k), 0, w, Int64(k), 0, 0,
                                       &expected, Int64(n), &offset)
        #expect(status == dnnl_success)
        let packed = PackedWeights(kind: .int8, outFeatures: n, inFeatures: k)
        w.withUnsafeBytes { packed.pack($0.baseAddress!) }
        x.withUnsafeBytes { xp in
            packedResult.withUnsafeMutableBytes { packed.multiplyOnThisThread(xp.baseAddress!, rows: rows, ldx: k, $0.baseAddress!, ldy: n) }
        }
        #expect(packedResult == expected)
    }
}
