/// GELU with the exact Gaussian CDF, `x · Φ(x)`, as BERT's `hidden_act: "gelu"` specifies.
public enum GELU {
    static let inverseSqrt2: Float = 0.707_106_781_186_547_6
    static let inverseSqrt2Pi: Float = 0.398_942_280_401_432_7

    /// `output[i] = gelu(input[i])`.
    public static func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRanges(count, minimumChunk: 1 << 15, Forward(input: input, output: output))
    }

    /// The same, each result rounded to bf16: the GELU output as a bf16 product reads it, without an fp32
    /// copy to write and round.
    public static func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<BFloat16>, count: Int) {
        Parallel.forRanges(count, minimumChunk: 1 << 15, RoundedForward(input: input, output: output))
    }

    @inline(__always)
    static func value(_ x: Float) -> Float {
        0.5 * x * (1 + FastMath.erf(x * inverseSqrt2))
    }

    /// `dInput[i] = dOutput[i] · gelu'(input[i])`, where gelu'(x) = Φ(x) + x·φ(x).
    public static func backward(
        _ input: UnsafePointer<Float>, _ dOutput: UnsafePointer<Float>, _ dInput: UnsafeMutablePointer<Float>,
        count: Int
    ) {
        Parallel.forRanges(count, minimumChunk: 1 << 15, Backward(input: input, dOutput: dOutput, dInput: dInput))
    }

    private struct Forward: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let output: UnsafeMutablePointer<Float>

        func callAsFunction(_ range: Range<Int>) {
            for i in range { output[i] = value(input[i]) }
        }
    }

    private struct RoundedForward: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let output: UnsafeMutablePointer<BFloat16>

        func callAsFunction(_ range: Range<Int>) {
            for i in range { output[i] = BFloat16(value(input[i])) }
        }
    }

    private struct Backward: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let dOutput: UnsafePointer<Float>
        let dInput: UnsafeMutablePointer<Float>

        func callAsFunction(_ range: Range<Int>) {
            // In place, through one pointer: the vectoriser's overlap check would send equal pointers to its
            // scalar loop.
            if UnsafePointer(dInput) == dOutput {
                for i in range { dInput[i] *= derivative(input[i]) }
            } else {
                for i in range { dInput[i] = dOutput[i] * derivative(input[i]) }
            }
        }

        @inline(__always)
        private func derivative(_ x: Float) -> Float {
            // One exponential for both terms: erf(x/√2) is built on e^(−x²/2), the density's own.
            let gaussian = FastMath.exp(-0.5 * x * x)
            let cdf = 0.5 * (1 + FastMath.erf(x * inverseSqrt2, expOfMinusSquare: gaussian))
            let pdf = inverseSqrt2Pi * gaussian
            return cdf + x * pdf
        }
    }
}
