/// Layer normalisation over the last dimension of a `[rows, width]` matrix, as `torch.nn.LayerNorm`:
/// biased variance, `eps` inside the square root.
public enum LayerNorm {
    /// Normalises each row, then scales by `weight` and shifts by `bias`. Saves each row's mean and
    /// reciprocal standard deviation for the backward pass.
    public static func forward(
        _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
        rows: Int, width: Int, eps: Float
    ) {
        Parallel.forRanges(rows, minimumChunk: 32,
                           Forward(input: input, weight: weight, bias: bias, output: output, mean: mean, rstd: rstd,
                                   width: width, eps: eps))
    }

    /// The forward pass's output again, from its input and the saved statistics, bit for bit: a model can
    /// keep a LayerNorm's input and statistics and drop its output until the backward pass needs it.
    public static func recompute(
        _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        rows: Int, width: Int
    ) {
        Parallel.forRanges(rows, minimumChunk: 32,
                           Recompute(input: input, weight: weight, bias: bias, mean: mean, rstd: rstd, output: output,
                                     width: width))
    }

    /// Given `dOutput`, writes `dInput` (overwriting) and adds to `dWeight` and `dBias`.
    public static func backward(
        _ input: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
        dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
        rows: Int, width: Int
    ) {
        Parallel.forRanges(rows, minimumChunk: 32,
                           InputGradient(input: input, mean: mean, rstd: rstd, weight: weight, dOutput: dOutput,
                                         dInput: dInput, width: width))
        // Parameter gradients reduce over rows; splitting by columns keeps the workers' writes disjoint.
        Parallel.forRanges(width, minimumChunk: 16,
                           ParameterGradients(input: input, mean: mean, rstd: rstd, dOutput: dOutput, dWeight: dWeight,
                                              dBias: dBias, rows: rows, width: width))
    }

    private struct Forward: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let weight: UnsafePointer<Float>
        let bias: UnsafePointer<Float>
        let output: UnsafeMutablePointer<Float>
        let mean: UnsafeMutablePointer<Float>
        let rstd: UnsafeMutablePointer<Float>
        let width: Int
        let eps: Float

        func callAsFunction(_ rows: Range<Int>) {
            for r in rows {
                let x = input + r * width
                let y = output + r * width
                let mu = sum(x, count: width) / Float(width)
                let variance = sumOfSquaredDeviations(x, count: width, from: mu) / Float(width)
                let s = 1 / (variance + eps).squareRoot()
                mean[r] = mu
                rstd[r] = s
                normalize(x, mean: mu, rstd: s, weight: weight, bias: bias, into: y, width: width)
            }
        }
    }

    private struct Recompute: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let weight: UnsafePointer<Float>
        let bias: UnsafePointer<Float>
        let mean: UnsafePointer<Float>
        let rstd: UnsafePointer<Float>
        let output: UnsafeMutablePointer<Float>
        let width: Int

        func callAsFunction(_ rows: Range<Int>) {
            for r in rows {
                normalize(input + r * width, mean: mean[r], rstd: rstd[r], weight: weight, bias: bias,
                          into: output + r * width, width: width)
            }
        }
    }

    /// One row's output; the forward pass and its recomputation share it, so they agree bit for bit.
    @inline(__always)
    private static func normalize(_ x: UnsafePointer<Float>, mean mu: Float, rstd s: Float, weight: UnsafePointer<Float>,
                                  bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, width: Int) {
        for c in 0..<width {
            y[c] = (x[c] - mu) * s * weight[c] + bias[c]
        }
    }

    /// dx = rstd · (g - mean(g) - x̂ · mean(g · x̂)), with g = dy · weight and x̂ the normalised input.
    private struct InputGradient: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let mean: UnsafePointer<Float>
        let rstd: UnsafePointer<Float>
        let weight: UnsafePointer<Float>
        let dOutput: UnsafePointer<Float>
        let dInput: UnsafeMutablePointer<Float>
        let width: Int

        func callAsFunction(_ rows: Range<Int>) {
            for r in rows {
                let x = input + r * width
                let dy = dOutput + r * width
                let dx = dInput + r * width
                let mu = mean[r], s = rstd[r]
                var sumG: Float = 0, sumGX: Float = 0
                for c in 0..<width {
                    let g = dy[c] * weight[c]
                    sumG += g
                    sumGX += g * (x[c] - mu) * s
                }
                let meanG = sumG / Float(width), meanGX = sumGX / Float(width)
                for c in 0..<width {
                    let xhat = (x[c] - mu) * s
                    dx[c] = s * (dy[c] * weight[c] - meanG - xhat * meanGX)
                }
            }
        }
    }

    private struct ParameterGradients: Parallel.RangeBody {
        let input: UnsafePointer<Float>
        let mean: UnsafePointer<Float>
        let rstd: UnsafePointer<Float>
        let dOutput: UnsafePointer<Float>
        let dWeight: UnsafeMutablePointer<Float>
        let dBias: UnsafeMutablePointer<Float>
        let rows: Int
        let width: Int

        func callAsFunction(_ columns: Range<Int>) {
            for r in 0..<rows {
                let x = input + r * width
                let dy = dOutput + r * width
                let mu = mean[r], s = rstd[r]
                for c in columns {
                    dWeight[c] += dy[c] * (x[c] - mu) * s
                    dBias[c] += dy[c]
                }
            }
        }
    }
}
