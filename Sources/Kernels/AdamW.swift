import CKernels
import Foundation

/// AdamW with decoupled weight decay, as `torch.optim.AdamW` computes it, over a span of a flat buffer.
public enum AdamW {
    public struct Settings: Sendable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var epsilon: Float = 1e-8

        public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
        }
    }

    /// One update of `count` parameters at 1-based `step`, with `g` the stored gradient times `gradientScale`
    /// (the clipping factor, as `clip_grad_norm_` multiplies it in before the step):
    ///
    ///     θ ← θ·(1 − lr·decay)
    ///     m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²
    ///     θ ← θ − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)
    ///
    /// With `clearing`, the gradients are consumed: each is read once and set to zero in the same loop, ready
    /// to accumulate the next step's. The optimizer is memory-bound, so clipping and clearing in separate
    /// passes over the gradients cost about a third of its time.
    public static func update(
        parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>,
        firstMoment m: UnsafeMutablePointer<Float>, secondMoment v: UnsafeMutablePointer<Float>,
        count: Int, step: Int, learningRate lr: Float, weightDecay: Float, gradientScale: Float = 1,
        clearing: Bool = true, settings s: Settings
    ) {
        let shrink = 1 - lr * weightDecay
        let stepSize = lr / (1 - Float(pow(Double(s.beta1), Double(step))))
        let correction2 = (1 - Float(pow(Double(s.beta2), Double(step)))).squareRoot()
        Parallel.forRanges(count, minimumChunk: 1 << 16,
                           Step(parameters: parameters, gradients: gradients, m: m, v: v, gradientScale: gradientScale,
                                shrink: shrink, stepSize: stepSize, correction2: correction2, clearing: clearing,
                                settings: s))
    }

    private struct Step: Parallel.RangeBody {
        let parameters: UnsafeMutablePointer<Float>
        let gradients: UnsafeMutablePointer<Float>
        let m: UnsafeMutablePointer<Float>
        let v: UnsafeMutablePointer<Float>
        let gradientScale: Float
        let shrink: Float
        let stepSize: Float
        let correction2: Float
        let clearing: Bool
        let settings: Settings

        func callAsFunction(_ range: Range<Int>) {
            bertkit_adamw_update(parameters + range.lowerBound, gradients + range.lowerBound, m + range.lowerBound,
                                 v + range.lowerBound, range.count, gradientScale, settings.beta1, settings.beta2,
                                 settings.epsilon, shrink, stepSize, correction2, clearing ? 1 : 0)
        }
    }
}

/// Σ x², accumulated in double precision per core: the global gradient norm for clipping.
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
    let chunks = max(1, min(Parallel.workers, count / (1 << 16)))
    // Stack scratch: this runs every training step, which must not allocate.
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: chunks) { partial in
        Parallel.forEach(chunks, SumOfSquares(x: x, count: count, chunks: chunks, partial: partial))
        return partial.reduce(0, +)
    }
}

/// Writes chunk `c`'s Σ x² into `partial[c]`.
private struct SumOfSquares: Parallel.IndexBody {
    let x: UnsafePointer<Float>
    let count: Int
    let chunks: Int
    let partial: UnsafeMutableBufferPointer<Double>

    func callAsFunction(_ c: Int) {
        let end = count * (c + 1) / chunks
        var total = 0.0
        var i = count * c / chunks
        while i < end {
            let n = min(4096, end - i)
            total += Double(dot(x + i, x + i, count: n))
            i += n
        }
        partial[c] = total
    }
}
