import CKernels

/// A bfloat16 number: the upper half of an fp32 bit pattern (sign, 8 exponent bits, 7 mantissa bits).
public struct BFloat16: Equatable, Sendable, BitwiseCopyable {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// Rounds to the nearest bf16, ties to even (as oneDNN and PyTorch do); NaN stays NaN
    /// (`bertkit_bf16_bits` in CKernels/include/vector_math.h, which the C loops use too).
    @inline(__always)
    public init(_ x: Float) { bitPattern = bertkit_bf16_bits(x) }

    /// The exact fp32 value.
    public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    /// Rounds `count` fp32 values to bf16, on all cores: for a whole matrix that products will read, rounded
    /// once (attention's Q, K, V and dL/d(context)).
    public static func round(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<BFloat16>, count: Int) {
        Parallel.forRanges(count, minimumChunk: 1 << 15, RoundRange(source: source, target: target))
    }

    /// Rounds a `rows × columns` matrix whose rows are `ld` apart into contiguous rows of `columns`, on the
    /// calling thread.
    static func roundSerial(rows: Int, columns: Int, _ source: UnsafePointer<Float>, ld: Int,
                            into target: UnsafeMutablePointer<BFloat16>) {
        for r in 0..<rows {
            let (x, y) = (source + r * ld, target + r * columns)
            for c in 0..<columns { y[c] = BFloat16(x[c]) }
        }
    }

    private struct RoundRange: Parallel.RangeBody {
        let source: UnsafePointer<Float>
        let target: UnsafeMutablePointer<BFloat16>

        func callAsFunction(_ range: Range<Int>) {
            for i in range { target[i] = BFloat16(source[i]) }
        }
    }
}
