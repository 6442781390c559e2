import CKernels

/// Inverted dropout with a counter-based random stream.
///
/// Whether element `i` is kept depends only on `(seed, i)`, through a 32-bit hash; the mask is the same
/// however the loop is split across cores, and a rerun with the same seed is bit-identical.
public enum Dropout {
    /// `output = input · keep / (1 - probability)`, where `keep(i)` is the draw of element `i` in the stream
    /// `seed`, numbered from `first` (the position of `input` in a larger tensor whose rows several processes
    /// share, so that each row gets the same mask whichever process computes it); `output` may equal `input`.
    /// With `probability == 0` it copies and keeps everything.
    ///
    /// Dropout is linear in its input, so its gradient is the same map: the backward pass calls `forward` on
    /// dL/d(output) with the same seed and `first`, drawing the mask again. No mask is stored, which costs a
    /// hash per element and saves a byte per element for every dropout site until the backward pass.
    public static func forward(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, probability: Float,
        seed: UInt64, first: Int = 0
    ) {
        apply(input, output, count: count, probability: probability, seed: seed, first: first)
    }

    /// `forward` over a batch's token rows (`[layout.rows, width]`) as `layout` places them: each row draws
    /// the mask of its padded position, so the result is the padded tensor's rows (whose draws are numbered
    /// from `first`). Its gradient is the same map.
    public static func forward(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, layout: TokenLayout, width: Int,
        probability: Float, seed: UInt64, first: Int = 0
    ) {
        guard !layout.isPadded, probability > 0 else {
            return apply(input, output, count: layout.rows * width, probability: probability, seed: seed, first: first)
        }
        precondition(first + layout.sequences * layout.length * width <= maximumStreamLength,
                     "a dropout stream indexes at most 2^32 elements")
        Parallel.forRanges(layout.sequences, ApplySequences(
            elements: Apply(input: input, output: output, seed: seed, first: first, threshold: threshold(probability),
                            scale: 1 / (1 - probability)), layout: layout, width: width))
    }

    /// `forward` over the compact rows of a selection (`SelectedRows`) of a larger `[tokens, width]` tensor:
    /// row `i` draws the mask of the larger tensor's row `positions[i]`, so the result is those rows of
    /// `forward` over all of it (whose draws are numbered from `first`). Its gradient is the same map.
    public static func forward(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, selected: SelectedRows, width: Int,
        probability: Float, seed: UInt64, first: Int = 0
    ) {
        guard probability > 0 else {
            if UnsafePointer(output) != input { output.update(from: input, count: selected.count * width) }
            return
        }
        let last = selected.count == 0 ? 0 : Int(selected.positions[selected.count - 1]) + 1
        precondition(first + last * width <= maximumStreamLength, "a dropout stream indexes at most 2^32 elements")
        Parallel.forRanges(selected.count, minimumChunk: max(1, (1 << 15) / width), ApplyRows(
            elements: Apply(input: input, output: output, seed: seed, first: first, threshold: threshold(probability),
                            scale: 1 / (1 - probability)), selected: selected, width: width))
    }

    private static func apply(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, probability: Float,
        seed: UInt64, first: Int
    ) {
        guard probability > 0 else {
            if UnsafePointer(output) != input { output.update(from: input, count: count) }
            return
        }
        precondition(first + count <= maximumStreamLength, "a dropout stream indexes at most 2^32 elements")
        Parallel.forRanges(count, minimumChunk: 1 << 15,
                           Apply(input: input, output: output, seed: seed, first: first, threshold: threshold(probability),
                                 scale: 1 / (1 - probability)))
    }

    /// `output[j] = input[j] · keep(first + j) / (1 - probability)` for `j < count`, on the calling thread,
    /// written in the format of a GEMM operand, where `keep(i)` is element `i`'s draw in the stream `seed`, as
    /// `forward` draws it. Recomputing the mask instead of storing it: attention rebuilds its dropped
    /// probabilities `P'` this way wherever a product reads them. With `probability` 0 it only converts.
    @inline(__always)
    static func applySerial<Operand: GemmInput>(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Operand>, count: Int, first: Int,
        probability: Float, seed: UInt64
    ) {
        guard probability > 0 else {
            for j in 0..<count { output[j] = Operand(input[j]) }
            return
        }
        let threshold = threshold(probability), scale = 1 / (1 - probability)
        for j in 0..<count {
            let factor = randomBits(seed: seed, index: first &+ j) >= threshold ? scale : 0
            output[j] = Operand(input[j] * factor)
        }
    }

    /// One draw of the mask for a tensor and its gradient together, as attention's backward pass needs them:
    /// `output[j] = input[j] · keep / (1 − p)` (in an operand format) and `gradient[j] *= keep / (1 − p)`.
    @inline(__always)
    static func applySerial<Operand: GemmInput>(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Operand>, gradient: UnsafeMutablePointer<Float>,
        count: Int, first: Int, probability: Float, seed: UInt64
    ) {
        let threshold = threshold(probability), scale = 1 / (1 - probability)
        for j in 0..<count {
            let factor = randomBits(seed: seed, index: first &+ j) >= threshold ? scale : 0
            output[j] = Operand(input[j] * factor)
            gradient[j] *= factor
        }
    }

    /// An element is dropped when its 32 random bits fall below this.
    static func threshold(_ probability: Float) -> UInt32 {
        UInt32(min(Double(probability) * 4_294_967_296.0, 4_294_967_295.0))
    }

    private struct Apply: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let output: UnsafeMutablePointer<Float>
        let seed: UInt64
        /// The draw of element 0.
        var first: Int
        /// An element is dropped when its 32 random bits are below this.
        let threshold: UInt32
        let scale: Float

        /// Each thread's share runs in C (CKernels/dropout.c), compiled for the CPU's vector width.
        func callAsFunction(_ range: Range<Int>) {
            bertkit_dropout(input + range.lowerBound, output + range.lowerBound, range.count, seed,
                            UInt64(truncatingIfNeeded: first &+ range.lowerBound), threshold, scale)
        }
    }

    private struct ApplySequences: Parallel.RangeBody {
        let elements: Apply
        let layout: TokenLayout
        let width: Int

        func callAsFunction(_ sequences: Range<Int>) {
            for b in sequences {
                let start = layout.start(b) * width
                var segment = elements
                segment.first += b * layout.length * width - start
                segment(start ..< start + layout.rowCount(b) * width)
            }
        }
    }

    /// `Apply` over each selected row, from its padded position's draw.
    private struct ApplyRows: Parallel.RangeBody {
        let elements: Apply
        let selected: SelectedRows
        let width: Int

        func callAsFunction(_ rows: Range<Int>) {
            for i in rows {
                var row = elements
                row.first += (Int(selected.positions[i]) - i) * width
                row(i * width ..< (i + 1) * width)
            }
        }
    }

    /// The number of distinct draws in a stream: `randomBits` reads the low 32 bits of an index.
    public static let maximumStreamLength = 1 << 32

    /// 32 uniformly distributed bits for element `index` of the stream `seed`: two rounds of a 32-bit
    /// integer mixer (Wellons' "lowbias32"), keyed by the seed's two halves, so that each seed is its own
    /// bijection of the indices (`bertkit_dropout_bits` in CKernels/include/vector_math.h, which the C loop uses
    /// too). Only the low 32 bits of `index` count (see `maximumStreamLength`). 32-bit multiplies vectorise
    /// (8 lanes on AVX2, 16 on AVX-512), where SplitMix64's 64-bit ones left the mask loops scalar and a bf16
    /// BERT-base training step (8 × 128, Zen 4) took 15 % longer.
    @inline(__always)
    public static func randomBits(seed: UInt64, index: Int) -> UInt32 {
        bertkit_dropout_bits(seed, UInt64(truncatingIfNeeded: index))
    }
}

extension Dropout {
    /// An independent stream for one dropout site (a layer and a position in it) of one training step.
    public static func streamSeed(_ seed: UInt64, site: UInt64) -> UInt64 {
        var z = seed ^ (site &* 0xD1B5_4A32_D192_ED03)
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }
}
