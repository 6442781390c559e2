import Kernels
import Foundation
import Testing

/// The int8 product against the same quantisation done by hand in double precision, and against fp32.
@Suite struct Int8GemmTests {
    /// Random values with an outlier per row, as activations have.
    func matrix(_ rows: Int, _ columns: Int, seed: UInt64, shift: Float = 0) -> [Float] {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
        }
        var m = (0..<(rows * columns)).map { _ in next() + shift }
        for r in 0..<rows { m[r * columns + (r * 7) % columns] *= 6 }
        return m
    }

    @Test(arguments: [(1, 16, 8), (5, 384, 384), (64, 384, 1536), (33, 1536, 384)])
    func theProductEqualsItsQuantisedArithmetic(rows: Int, inFeatures k: Int, outFeatures n: Int) {
        let x = matrix(rows, k, seed: 1, shift: 0.3), w = matrix(n, k, seed: 2)
        let weights = QuantizedWeights(outFeatures: n, inFeatures: k)
        w.withUnsafeBufferPointer { weights.quantize($0.baseAddress!) }
        var y = [Float](repeating: .nan, count: rows * n)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { Int8Gemm.multiply(xp.baseAddress!, rows: rows, ldx: k, weights: weights, $0.baseAddress!, ldy: n) } }

        // The same steps in double precision: per-row asymmetric u8 activations, per-channel symmetric weights.
        let limit = Double(Int8Gemm.weightLimit)
        var worst = 0.0, worstAgainstFloat = 0.0, scale = 0.0
        for i in 0..<rows {
            let row = x[(i * k)..<((i + 1) * k)].map(Double.init)
            let low = min(0, row.min()!), high = max(0, row.max()!)
            let sx = Float(high - low) / 255
            let zero = max(0, min(255, (Float(-low) / sx).rounded(.toNearestOrEven)))
            let qx = row.map { max(0, min(255, (Float($0) / sx).rounded(.toNearestOrEven) + zero)) }
            for j in 0..<n {
                let wr = w[(j * k)..<((j + 1) * k)]
                let sw = wr.map(abs).max()! / Float(limit)
                let qw = wr.map { max(-Float(limit), min(Float(limit), ($0 / sw).rounded(.toNearestOrEven))) }
                var dot = 0.0, exact = 0.0
                for c in 0..<k {
                    dot += Double(qx[c] - zero) * Double(qw[c])
                    exact += row[c] * Double(wr[wr.startIndex + c])
                }
                let expected = Double(sx) * Double(sw) * dot
                worst = max(worst, abs(Double(y[i * n + j]) - expected))
                worstAgainstFloat = max(worstAgainstFloat, abs(Double(y[i * n + j]) - exact))
                scale = max(scale, abs(exact))
            }
        }
        #expect(worst <= 1e-5 * scale, "against the quantised arithmetic: \(worst) (scale \(scale))")
        #expect(worstAgainstFloat <= 0.02 * scale, "against the fp32 product: \(worstAgainstFloat) (scale \(scale))")
    }

    /// Each weight comes back within half a step of its row's scale, the largest of each row exactly.
    @Test func weightsSurviveTheRoundTrip() {
        let (n, k) = (12, 40)
        let w = matrix(n, k, seed: 3)
        let weights = QuantizedWeights(outFeatures: n, inFeatures: k)
        w.withUnsafeBufferPointer { weights.quantize($0.baseAddress!) }
        for j in 0..<n {
            let scale = weights.scales[j], row = w[(j * k)..<((j + 1) * k)]
            #expect(abs(scale * Float(Int8Gemm.weightLimit) - row.map(abs).max()!) <= 1e-6 * scale * 127)
            var sum: Int32 = 0
            for c in 0..<k {
                let q = weights.values[j * k + c]
                sum += Int32(q)
                #expect(abs(Float(q) * scale - w[j * k + c]) <= scale / 2 * (1 + 1e-5))
            }
            #expect(weights.sums[j] == sum)
        }
    }

    /// With a bias, each row is the product without it plus the bias, bit for bit, on one thread and split.
    @Test(arguments: [(5, 384, 384), (640, 384, 1536)])
    func aBiasIsAddedToEachRow(rows: Int, inFeatures k: Int, outFeatures n: Int) {
        let x = matrix(rows, k, seed: 4), w = matrix(n, k, seed: 5), bias = matrix(1, n, seed: 6)
        let weights = QuantizedWeights(outFeatures: n, inFeatures: k)
        w.withUnsafeBufferPointer { weights.quantize($0.baseAddress!) }
        var plain = [Float](repeating: .nan, count: rows * n), biased = plain
        Int8Gemm.multiply(x, rows: rows, ldx: k, weights: weights, &plain, ldy: n)
        Int8Gemm.multiply(x, rows: rows, ldx: k, weights: weights, &biased, ldy: n, bias: bias)
        #expect(biased == (0..<rows * n).map { plain[$0] + bias[$0 % n] })
    }

    @Test func aRowOfZerosStaysZero() {
        let weights = QuantizedWeights(outFeatures: 3, inFeatures: 4)
        [Float](repeating: 0.5, count: 12).withUnsafeBufferPointer { weights.quantize($0.baseAddress!) }
        var y = [Float](repeating: .nan, count: 3)
        [Float](repeating: 0, count: 4).withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { Int8Gemm.multiply(x.baseAddress!, rows: 1, ldx: 4, weights: weights, $0.baseAddress!, ldy: 3) }
        }
        #expect(y == [0, 0, 0])
    }
}
