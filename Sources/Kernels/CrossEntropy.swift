import Foundation

/// Softmax cross-entropy over rows of logits, with its gradient, as `torch.nn.CrossEntropyLoss` (mean over
/// the rows whose target is not `ignored`).
public enum CrossEntropy {
    /// Returns the mean loss over counted rows and writes `dLogits = scale · (softmax − onehot) / counted`
    /// (zero on ignored rows). `targets` holds one class index per row. With class `weights`, as
    /// `torch.nn.CrossEntropyLoss(weight:)`: each row's loss and gradient are multiplied by its target's weight,
    /// and the mean divides by the sum of those weights instead of the row count.
    ///
    /// `normalizer`, when given, replaces that count (or sum of weights) as the mean's denominator: these rows are
    /// then a share of a larger batch whose count it is, and the shares' losses and gradients add up to the
    /// whole batch's.
    public static func forwardBackward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, classes: Int,
        ignored: Int32 = -100, weights: UnsafePointer<Float>? = nil, normalizer: Double? = nil, scale: Float,
        dLogits: UnsafeMutablePointer<Float>
    ) -> Double {
        let countedHere = count(UnsafeBufferPointer(start: targets, count: rows), ignored: ignored, weights: weights)
        dLogits.update(repeating: 0, count: rows * classes)
        guard countedHere > 0 else { return 0 }
        let counted = normalizer ?? countedHere
        var total = 0.0
        for r in 0..<rows where targets[r] != ignored {
            let z = logits + r * classes, dz = dLogits + r * classes
            let y = Int(targets[r])
            // 1 without weights: the products below are then exact, and unweighted results unchanged.
            let weight = weights?[y] ?? 1
            var maximum = -Float.infinity
            for c in 0..<classes { maximum = max(maximum, z[c]) }
            var sum: Float = 0
            for c in 0..<classes { sum += FastMath.exp(z[c] - maximum) }
            let logSum = maximum + log(sum)
            total += Double(weight) * Double(logSum - z[y])
            for c in 0..<classes {
                dz[c] = weight * scale * (FastMath.exp(z[c] - logSum) - (c == y ? 1 : 0)) / Float(counted)
            }
        }
        return total / counted
    }

    /// The denominator of the mean over `targets`: the rows not `ignored`, or the sum of their targets' weights.
    public static func count(_ targets: some Sequence<Int32>, ignored: Int32 = -100, weights: UnsafePointer<Float>? = nil) -> Double {
        var counted = 0.0
        for y in targets where y != ignored { counted += Double(weights?[Int(y)] ?? 1) }
        return counted
    }
}

/// Binary cross-entropy of independent sigmoid outputs (multi-label classification), with its gradient, as
/// `torch.nn.BCEWithLogitsLoss`: the mean over every output of every row.
public enum BinaryCrossEntropy {
    /// Returns the mean loss over the `count` logits and writes `dLogits = scale · (sigmoid(z) − y) / count`.
    /// `targets` holds 1 or 0 per logit. `normalizer` replaces `count` as the denominator for a share of a larger
    /// batch (as in `CrossEntropy`).
    public static func forwardBackward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, normalizer: Int? = nil, scale: Float,
        dLogits: UnsafeMutablePointer<Float>
    ) -> Double {
        let denominator = normalizer ?? count
        var total = 0.0
        for i in 0..<count {
            let z = logits[i], y = targets[i]
            // max(z, 0) − z·y + log(1 + e^−|z|): the loss of log(sigmoid) written so that no term overflows.
            total += Double(max(z, 0) - z * y) + Foundation.log1p(Foundation.exp(-Double(abs(z))))
            dLogits[i] = scale * (1 / (1 + FastMath.exp(-z)) - y) / Float(denominator)
        }
        return total / Double(denominator)
    }
}

/// Mean squared error of one output per row, with its gradient, as `torch.nn.MSELoss`.
public enum MeanSquaredError {
    /// `normalizer` replaces `rows` as the denominator for a share of a larger batch (as in `CrossEntropy`).
    public static func forwardBackward(
        predictions: UnsafePointer<Float>, targets: UnsafePointer<Float>, rows: Int, normalizer: Int? = nil, scale: Float,
        dPredictions: UnsafeMutablePointer<Float>
    ) -> Double {
        let denominator = normalizer ?? rows
        var total = 0.0
        for r in 0..<rows {
            let difference = predictions[r] - targets[r]
            total += Double(difference * difference)
            dPredictions[r] = scale * 2 * difference / Float(denominator)
        }
        return total / Double(denominator)
    }
}
