import Kernels

/// Deterministic pseudo-random floats for test inputs.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func uniform(_ range: ClosedRange<Float> = -1...1) -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let unit = Float(state >> 40) / Float(1 << 24)
        return range.lowerBound + unit * (range.upperBound - range.lowerBound)
    }

    mutating func array(_ count: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in uniform(range) }
    }
}

/// Central differences of a scalar loss with respect to each element of `x`.
func numericalGradient(of loss: ([Float]) -> Double, at x: [Float], step: Float = 1e-2) -> [Float] {
    var x = x
    return (0..<x.count).map { i in
        let saved = x[i]
        x[i] = saved + step
        let up = loss(x)
        x[i] = saved - step
        let down = loss(x)
        x[i] = saved
        return Float((up - down) / Double(2 * step))
    }
}

/// ‖a − b‖∞ / ‖b‖∞.
func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    let scale = b.map(abs).max() ?? 0
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    return scale == 0 ? worst : worst / scale
}

/// Σ values ⊙ weights in double precision: a loss whose gradient with respect to `values` is `weights`.
func weightedSum(_ values: [Float], _ weights: [Float]) -> Double {
    zip(values, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}
