/// Inverted dropout with a counter-based random stream.
///
/// Whether element `i` is kept depends only on `(seed, i)`, through a SplitMix64 hash; the mask is the same
/// however the loop is split across cores, and a rerun with the same seed is bit-identical.
public enum Dropout {
    /// Fills `mask` with 1 (keep) or 0 (drop) and writes `output = input · mask / (1 - probability)`.
    /// With `probability == 0` it copies and keeps everything.
    public static func forward(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<UInt8>,
        count: Int, probability: Float, seed: UInt64
    ) {
        guard probability > 0 else {
            if UnsafePointer(output) != input { output.update(from: input, count: count) }
            mask.update(repeating: 1, count: count)
            return
        }
        Parallel.forRanges(count, minimumChunk: 1 << 15,
                           Forward(input: input, output: output, mask: mask, seed: seed, threshold: threshold(probability),
                                   scale: 1 / (1 - probability)))
    }

    /// `dInput = dOutput · mask / (1 - probability)`; `dInput` may equal `dOutput`.
    public static func backward(
        _ dOutput: UnsafePointer<Float>, _ dInput: UnsafeMutablePointer<Float>, mask: UnsafePointer<UInt8>,
        count: Int, probability: Float
    ) {
        guard probability > 0 else {
            if UnsafePointer(dInput) != dOutput { dInput.update(from: dOutput, count: count) }
            return
        }
        let scale = 1 / (1 - probability)
        Parallel.forRanges(count, minimumChunk: 1 << 15, Backward(dOutput: dOutput, dInput: dInput, mask: mask, scale: scale))
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
            let factor = randomBits(seed: seed, index: UInt64(first + j)) >= threshold ? scale : 0
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
            let factor = randomBits(seed: seed, index: UInt64(first + j)) >= threshold ? scale : 0
            output[j] = Operand(input[j] * factor)
            gradient[j] *= factor
        }
    }

    /// An element is dropped when its 32 random bits fall below this.
    static func threshold(_ probability: Float) -> UInt32 {
        UInt32(min(Double(probability) * 4_294_967_296.0, 4_294_967_295.0))
    }

    private struct Forward: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let output: UnsafeMutablePointer<Float>
        let mask: UnsafeMutablePointer<UInt8>
        let seed: UInt64
        /// An element is dropped when its 32 random bits are below this.
        let threshold: UInt32
        let scale: Float

        func callAsFunction(_ range: Range<Int>) {
            // In place through one pointer, which vectorises (see `GELU`).
            if UnsafePointer(output) == input {
                for i in range {
                    let keep: UInt8 = randomBits(seed: seed, index: UInt64(i)) >= threshold ? 1 : 0
                    mask[i] = keep
                    output[i] *= Float(keep) * scale
                }
            } else {
                for i in range {
                    let keep: UInt8 = randomBits(seed: seed, index: UInt64(i)) >= threshold ? 1 : 0
                    mask[i] = keep
                    output[i] = input[i] * Float(keep) * scale
                }
            }
        }
    }

    private struct Backward: Parallel.RangeBody {
        let dOutput: UnsafePointer<Float>
        let dInput: UnsafeMutablePointer<Float>
        let mask: UnsafePointer<UInt8>
        let scale: Float

        func callAsFunction(_ range: Range<Int>) {
            if UnsafePointer(dInput) == dOutput {
                for i in range { dInput[i] *= Float(mask[i]) * scale }
            } else {
                for i in range { dInput[i] = dOutput[i] * Float(mask[i]) * scale }
            }
        }
    }

    /// 32 uniformly distributed bits for element `index` of the stream `seed` (SplitMix64's finaliser).
    @inline(__always)
    public static func randomBits(seed: UInt64, index: UInt64) -> UInt32 {
        var z = seed &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return UInt32(truncatingIfNeeded: z >> 32)
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
