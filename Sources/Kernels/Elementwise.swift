/// Small elementwise and broadcast operations over `[rows, width]` row-major matrices.
public enum Elementwise {
    /// `output[i] = a[i] + b[i]`; `output` may alias either input.
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int
    ) {
        Parallel.forRanges(count, minimumChunk: 1 << 16, Add(a: a, b: b, output: output))
    }

    /// `x[r, c] += bias[c]` for `rows` rows, `stride` apart, on the calling thread: the products' epilogue
    /// (`Gemm.multiply(bias:)`), run by the thread that computed each block, right after it.
    @inline(__always)
    static func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                        stride: Int) {
        for r in 0..<rows {
            let row = x + r * stride
            for c in 0..<width { row[c] += bias[c] }
        }
    }

    /// `dBias[c] += Σ_r dOutput[r, c]`: the gradient of a broadcast bias.
    public static func accumulateColumnSums(
        _ dOutput: UnsafePointer<Float>, into dBias: UnsafeMutablePointer<Float>, rows: Int, width: Int,
        rowStride: Int? = nil
    ) {
        // Split by columns, so that each thread owns its slice of dBias.
        Parallel.forRanges(width, minimumChunk: 64,
                           ColumnSums(dOutput: dOutput, dBias: dBias, rows: rows, stride: rowStride ?? width))
    }

    /// `output[i] = tanh(input[i])`.
    public static func tanh(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { output[i] = FastMath.tanh(input[i]) }
    }

    /// `dInput[i] = dOutput[i] · (1 - output[i]²)`, from the saved tanh output.
    public static func tanhBackward(
        output: UnsafePointer<Float>, _ dOutput: UnsafePointer<Float>, _ dInput: UnsafeMutablePointer<Float>,
        count: Int
    ) {
        for i in 0..<count { dInput[i] = dOutput[i] * (1 - output[i] * output[i]) }
    }

    private struct Add: Parallel.RangeBody {
        let a: UnsafePointer<Float>
        let b: UnsafePointer<Float>
        let output: UnsafeMutablePointer<Float>

        func callAsFunction(_ range: Range<Int>) {
            // In place through one pointer, which vectorises (see `GELU`).
            if UnsafePointer(output) == a {
                for i in range { output[i] += b[i] }
            } else if UnsafePointer(output) == b {
                for i in range { output[i] += a[i] }
            } else {
                for i in range { output[i] = a[i] + b[i] }
            }
        }
    }

    private struct ColumnSums: Parallel.RangeBody {
        let dOutput: UnsafePointer<Float>
        let dBias: UnsafeMutablePointer<Float>
        let rows: Int
        let stride: Int

        func callAsFunction(_ columns: Range<Int>) {
            for r in 0..<rows {
                let row = dOutput + r * stride
                for c in columns { dBias[c] += row[c] }
            }
        }
    }
}
