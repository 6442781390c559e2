import Testing
import Kernels

/// Each kernel's backward pass against central differences of its forward pass, on small random inputs.
@Suite struct KernelGradientTests {
    @Test func gelu() {
        var random = TestRandom(seed: 1)
        let x = random.array(257, -4...4)
        let w = random.array(257)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: x.count)
            GELU.forward(x, &y, count: x.count)
            return y
        }
        var dx = [Float](repeating: 0, count: x.count)
        GELU.backward(x, w, &dx, count: x.count)
        let numerical = numericalGradient(of: { weightedSum(forward($0), w) }, at: x, step: 1e-3)
        #expect(relativeDifference(dx, numerical) < 2e-3)
    }

    @Test func geluMatchesTheExactErfDefinition() {
        let x: [Float] = stride(from: -8, through: 8, by: 0.01).map { Float($0) }
        var y = [Float](repeating: 0, count: x.count)
        GELU.forward(x, &y, count: x.count)
        for (xi, yi) in zip(x, y) {
            let exact = 0.5 * Double(xi) * (1 + erf(Double(xi) / 2.0.squareRoot()))
            #expect(abs(Double(yi) - exact) <= 1e-6 * max(1, abs(exact)), "gelu(\(xi))")
        }
    }

    @Test func fastExpAndTanh() {
        for x in stride(from: Float(-80), through: 80, by: 0.37) {
            let e = FastMath.exp(x)
            #expect(abs(Double(e) - Foundation_exp(Double(x))) <= 3e-7 * Foundation_exp(Double(x)), "exp(\(x))")
        }
        for x in stride(from: Float(-10), through: 10, by: 0.013) {
            #expect(abs(Double(FastMath.tanh(x)) - Foundation_tanh(Double(x))) <= 4e-7, "tanh(\(x))")
        }
    }

    @Test func layerNorm() {
        let (rows, width) = (5, 24)
        var random = TestRandom(seed: 2)
        let x = random.array(rows * width, -2...2)
        let weight = random.array(width, 0.5...1.5)
        let bias = random.array(width)
        let w = random.array(rows * width)
        func forward(_ x: [Float], _ weight: [Float], _ bias: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: x.count)
            var mean = [Float](repeating: 0, count: rows), rstd = mean
            LayerNorm.forward(x, weight: weight, bias: bias, output: &y, mean: &mean, rstd: &rstd,
                              rows: rows, width: width, eps: 1e-5)
            return y
        }
        var mean = [Float](repeating: 0, count: rows), rstd = mean
        var y = x
        LayerNorm.forward(x, weight: weight, bias: bias, output: &y, mean: &mean, rstd: &rstd, rows: rows, width: width, eps: 1e-5)
        var dx = x, dWeight = [Float](repeating: 0, count: width), dBias = dWeight
        LayerNorm.backward(x, mean: mean, rstd: rstd, weight: weight, dOutput: w, dInput: &dx,
                           dWeight: &dWeight, dBias: &dBias, rows: rows, width: width)
        #expect(relativeDifference(dx, numericalGradient(of: { weightedSum(forward($0, weight, bias), w) }, at: x)) < 2e-3)
        #expect(relativeDifference(dWeight, numericalGradient(of: { weightedSum(forward(x, $0, bias), w) }, at: weight)) < 2e-3)
        #expect(relativeDifference(dBias, numericalGradient(of: { weightedSum(forward(x, weight, $0), w) }, at: bias)) < 2e-3)
    }

    @Test func softmaxOnStridedRows() {
        let (rows, width, stride) = (3, 7, 10)
        var random = TestRandom(seed: 3)
        let x = random.array(rows * stride, -3...3)
        let w = random.array(rows * stride)
        func forward(_ x: [Float]) -> [Float] {
            var y = x
            Softmax.forwardRows(&y, rows: rows, width: width, stride: stride)
            return (0..<rows).flatMap { r in y[(r * stride)..<(r * stride + width)] }
        }
        let used = (0..<rows).flatMap { r in w[(r * stride)..<(r * stride + width)] }
        var y = x
        Softmax.forwardRows(&y, rows: rows, width: width, stride: stride)
        var g = [Float](repeating: 0, count: rows * stride)
        y.withUnsafeBufferPointer { y in
            w.withUnsafeBufferPointer { w in
                g.withUnsafeMutableBufferPointer { g in
                    for r in 0..<rows {
                        Softmax.backwardRow(output: y.baseAddress! + r * stride, gradient: w.baseAddress! + r * stride,
                                            into: g.baseAddress! + r * stride, width: width)
                    }
                }
            }
        }
        let numerical = numericalGradient(of: { weightedSum(forward($0), used) }, at: x, step: 1e-3)
        for r in 0..<rows {
            let analytic = Array(g[(r * stride)..<(r * stride + width)])
            let expected = Array(numerical[(r * stride)..<(r * stride + width)])
            #expect(relativeDifference(analytic, expected) < 2e-3)
            #expect(numerical[(r * stride + width)..<((r + 1) * stride)].allSatisfy { $0 == 0 }, "columns past width are not read")
        }
    }

    @Test func softmaxRowsOfEveryWidthAreTheScalarDefinitionBitForBit() {
        // However the row loops are vectorised (whole vectors, then narrower ones and scalars for the rest), every
        // value is the scalar `FastMath.exp`'s divided by the sum that `sum` gives, at widths on both sides of the
        // vectors' multiples: a faster softmax must give the same numbers.
        var random = TestRandom(seed: 5)
        for width in 1...50 {
            let (rows, stride) = (3, width + 3)
            let x = random.array(rows * stride, -30...30)
            var y = x
            Softmax.forwardRows(&y, rows: rows, width: width, stride: stride)
            for r in 0..<rows {
                let scores = Array(x[(r * stride)..<(r * stride + width)])
                let maximum = scores.max()!
                let exponentials = scores.map { FastMath.exp($0 - maximum) }
                let inverse = 1 / sum(exponentials, count: width)
                #expect(y[(r * stride)..<(r * stride + width)].map(\.bitPattern) == exponentials.map { ($0 * inverse).bitPattern },
                        "width \(width), row \(r)")
                #expect(y[(r * stride + width)..<((r + 1) * stride)] == x[(r * stride + width)..<((r + 1) * stride)],
                        "columns past width are not written")
            }
        }
    }

    @Test func dropoutIsLinearInItsInputAndSeeded() {
        let count = 1 << 16
        var random = TestRandom(seed: 4)
        let x = random.array(count)
        let ones = [Float](repeating: 1, count: count)
        var y = x, mask = ones
        Dropout.forward(x, &y, count: count, probability: 0.1, seed: 42)
        Dropout.forward(ones, &mask, count: count, probability: 0.1, seed: 42)
        // Inverted dropout multiplies the kept values by 1/(1-p), as PyTorch does.
        let scale: Float = 1 / (1 - 0.1)
        #expect(mask.allSatisfy { $0 == 0 || $0 == scale })
        let kept = mask.filter { $0 != 0 }.count
        // Binomial(65536, 0.9): standard deviation 77; allow five of them.
        #expect(abs(Double(kept) - 0.9 * Double(count)) < 5 * 77)
        #expect((0..<count).allSatisfy { y[$0] == x[$0] * mask[$0] }, "the same draws for any input")
        var y2 = x
        Dropout.forward(x, &y2, count: count, probability: 0.1, seed: 43)
        #expect(y2 != y, "another seed, another mask")
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { Dropout.forward($0.baseAddress!, $0.baseAddress!, count: count, probability: 0.1, seed: 42) }
        #expect(inPlace == y, "in place as out of place")
    }

    /// Over a packed layout or selected rows, each row gets the mask of its padded position in the padded
    /// tensor, whose draws are numbered from `first`.
    @Test func dropoutOfPackedAndSelectedRowsIsThePaddedTensorsRows() {
        let (lengths, T, width, first) = ([3, 7, 1, 5], 7, 40, 4 * 7 * 40)
        let seed: UInt64 = 9
        var random = TestRandom(seed: 5)
        let padded = random.array(lengths.count * T * width)
        var expected = padded
        Dropout.forward(padded, &expected, count: padded.count, probability: 0.3, seed: seed, first: first)

        let pool = BufferPool()
        let layout = TokenLayout.Storage(maxBatch: 4, pool: pool).packed(lengths: lengths, length: T)
        #expect(layout.rows == lengths.reduce(0, +))
        let realRows = lengths.indices.flatMap { b in (0..<lengths[b]).map { b * T + $0 } }
        let packed = realRows.flatMap { padded[($0 * width)..<(($0 + 1) * width)] }
        var dropped = packed
        Dropout.forward(packed, &dropped, layout: layout, width: width, probability: 0.3, seed: seed, first: first)
        #expect(dropped == realRows.flatMap { expected[($0 * width)..<(($0 + 1) * width)] })

        let chosen: Set = [0, 9, 10, 13, 21, 26]
        let selected = SelectedRows.Storage(maxBatch: 4, maxLength: T, pool: pool).select(layout) { chosen.contains($0) }
        #expect(selected.count == chosen.filter { realRows.contains($0) }.count)
        let rows = (0..<selected.count).map { Int(selected.positions[$0]) }
        let compact = rows.flatMap { padded[($0 * width)..<(($0 + 1) * width)] }
        var droppedRows = compact
        Dropout.forward(compact, &droppedRows, selected: selected, width: width, probability: 0.3, seed: seed, first: first)
        #expect(droppedRows == rows.flatMap { expected[($0 * width)..<(($0 + 1) * width)] })
        #expect(droppedRows != compact, "some elements dropped")
    }

    /// The mask hash is the project's own (a keyed 32-bit mixer), so check what dropout needs of it: the
    /// masks of two sites of one step, and of neighbouring elements, are dropped together as often as
    /// independent draws would be, p² of the time.
    @Test func dropoutMasksOfSitesAndNeighboursAreIndependent() {
        let (count, p) = (1 << 18, Float(0.1))
        let ones = [Float](repeating: 1, count: count)
        func mask(site: UInt64) -> [Bool] {
            var y = ones
            Dropout.forward(ones, &y, count: count, probability: p, seed: Dropout.streamSeed(7, site: site))
            return y.map { $0 == 0 }
        }
        let (a, b) = (mask(site: 1), mask(site: 2))
        // Binomial(n, p²) with p² = 0.01: allow five standard deviations.
        func expectIndependent(_ both: Int, pairs n: Int, _ comment: Comment) {
            let q = Double(p * p)
            #expect(abs(Double(both) - q * Double(n)) < 5 * (q * (1 - q) * Double(n)).squareRoot(), comment)
        }
        expectIndependent((0..<count).filter { a[$0] && b[$0] }.count, pairs: count, "two sites")
        expectIndependent((1..<count).filter { a[$0] && a[$0 - 1] }.count, pairs: count - 1, "neighbours")
        expectIndependent((0..<(count / 2)).filter { a[$0] && a[$0 + count / 2] }.count, pairs: count / 2,
                          "elements half a stream apart")
        let dropped = a.filter { $0 }.count
        #expect(abs(Double(dropped) - 0.1 * Double(count)) < 5 * (0.09 * Double(count)).squareRoot())
    }

    @Test func embeddingGatherAndScatter() {
        let (rows, width, tokens) = (6, 5, 9)
        var random = TestRandom(seed: 5)
        let table = random.array(rows * width)
        let indices: [Int32] = [0, 3, 3, 5, 1, 0, 3, 2, 4]
        let w = random.array(tokens * width)
        func forward(_ table: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: tokens * width)
            Embedding.gather(table, indices: indices, into: &out, tokens: tokens, width: width, accumulate: false)
            return out
        }
        var dTable = [Float](repeating: 0, count: rows * width)
        Embedding.scatterAdd(w, indices: indices, into: &dTable, tokens: tokens, width: width)
        #expect(relativeDifference(dTable, numericalGradient(of: { weightedSum(forward($0), w) }, at: table)) < 1e-3)
        var frozen = [Float](repeating: 0, count: rows * width)
        Embedding.scatterAdd(w, indices: indices, into: &frozen, tokens: tokens, width: width, frozenRow: 3)
        #expect(frozen[(3 * width)..<(4 * width)].allSatisfy { $0 == 0 })
        #expect(frozen[0..<width] == dTable[0..<width])
    }

    @Test func tanhAndBias() {
        var random = TestRandom(seed: 6)
        let x = random.array(40, -3...3)
        let w = random.array(40)
        func forward(_ x: [Float]) -> [Float] {
            var y = x
            Elementwise.tanh(x, &y, count: x.count)
            return y
        }
        var dx = x
        Elementwise.tanhBackward(output: forward(x), w, &dx, count: x.count)
        #expect(relativeDifference(dx, numericalGradient(of: { weightedSum(forward($0), w) }, at: x, step: 1e-3)) < 2e-3)

        var dBias = [Float](repeating: 0, count: 8)
        Elementwise.accumulateColumnSums(w, into: &dBias, rows: 5, width: 8)
        for c in 0..<8 { #expect(abs(dBias[c] - (0..<5).map { w[$0 * 8 + c] }.reduce(0, +)) < 1e-6) }
    }
}
