/// Softmax along rows of a strided matrix: `rows` rows of `width` values, `stride` floats apart.
public enum Softmax {
    /// In place: each row becomes exp(x - max) / Σ exp(x - max).
    public static func forwardRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int) {
        for r in 0..<rows {
            let row = x + r * stride
            var maximum = -Float.infinity
            for c in 0..<width { maximum = max(maximum, row[c]) }
            for c in 0..<width { row[c] = FastMath.exp(row[c] - maximum) }
            let inverse = 1 / sum(row, count: width)
            for c in 0..<width { row[c] *= inverse }
        }
    }

    /// In place on `gradient`: dx = y ⊙ (dy - Σ dy ⊙ y), given the forward output `y`.
    public static func backwardRows(
        output y: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int
    ) {
        for r in 0..<rows {
            let yr = y + r * stride
            let g = gradient + r * stride
            let inner = dot(yr, g, count: width)
            for c in 0..<width { g[c] = yr[c] * (g[c] - inner) }
        }
    }
}
