import CKernels

/// Softmax along rows of a strided matrix: `rows` rows of `width` values, `stride` floats apart.
public enum Softmax {
    /// In place: each row becomes exp(x - max) / Σ exp(x - max), the sum taken as `sum` takes it (CKernels/softmax.c,
    /// compiled for the CPU's vector width).
    public static func forwardRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int) {
        bertkit_softmax_rows(x, rows, width, stride)
    }

    /// One row's gradient: `dx = y ⊙ (dy − Σ dy ⊙ y)`, given the forward output `y`, written to `dInput`.
    public static func backwardRow(output y: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>,
                                   into dInput: UnsafeMutablePointer<Float>, width: Int) {
        rowGradient(output: y, gradient: dy, into: dInput, width: width)
    }

    /// The same, each result rounded to the format of a GEMM operand (attention's score gradient).
    @inline(__always)
    static func rowGradient<Operand: GemmInput>(output y: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>,
                                                into dInput: UnsafeMutablePointer<Operand>, width: Int) {
        let inner = dot(y, dy, count: width)
        for c in 0..<width { dInput[c] = Operand(y[c] * (dy[c] - inner)) }
    }
}
