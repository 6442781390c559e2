import CKernels

/// GELU with the exact Gaussian CDF, `x · Φ(x)`, as BERT's `hidden_act: "gelu"` specifies.
///
/// Each thread's share runs in C (CKernels/gelu.c), compiled for the CPU's vector width.
public enum GELU {
    /// `output[i] = gelu(input[i])`.
    public static func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRanges(count, minimumChunk: 1 << 15, Forward(input: input, output: output))
    }

    /// The same, each result rounded to bf16: the GELU output as a bf16 product reads it, without an fp32
    /// copy to write and round.
    public static func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<BFloat16>, count: Int) {
        Parallel.forRanges(count, minimumChunk: 1 << 15, RoundedForward(input: input, output: output))
    }

    /// `dInput[i] = dOutput[i] · gelu'(input[i])`, where gelu'(x) = Φ(x) + x·φ(x); `dInput` may be `dOutput`.
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
            bertkit_gelu_forward(input + range.lowerBound, output + range.lowerBound, range.count)
        }
    }

    private struct RoundedForward: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let output: UnsafeMutablePointer<BFloat16>

        func callAsFunction(_ range: Range<Int>) {
            (output + range.lowerBound).withMemoryRebound(to: UInt16.self, capacity: range.count) {
                bertkit_gelu_forward_bf16(input + range.lowerBound, $0, range.count)
            }
        }
    }

    private struct Backward: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let dOutput: UnsafePointer<Float>
        let dInput: UnsafeMutablePointer<Float>

        func callAsFunction(_ range: Range<Int>) {
            bertkit_gelu_backward(input + range.lowerBound, dOutput + range.lowerBound, dInput + range.lowerBound,
                                  range.count)
        }
    }
}
