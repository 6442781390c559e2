import Foundation

/// Softmax cross-entropy over rows of logits, with its gradient, as `torch.nn.CrossEntropyLoss` (mean over
/// the rows whose target is not `ignored`).
public enum CrossEntropy {
    /// Returns the mean loss over counted rows and writes `dLogits = scale · (softmax − onehot) / counted`
    /// (zero on ignored rows). `targets` holds one class index per row. With class `weights`, as
    /// `torch.nn.CrossEntropyLoss(weight:)`: each row's loss and gradient are multiplied by its target's weight,
    /// and the mean divides by the sum of those weights instead of the row count.
    public static func forwardBackward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, classes: Int,
        ignored: Int32 = -100, weights: UnsafePointer<Float>? = nil, scale: Float, dLogits: UnsafeMutablePointer<Float>
    ) -> Double {
        var counted = 0.0
        for r in 0..<rows where targets[r] != ignored { counted += Double(weights?[Int(targets[r])] ?? 1) }
        dLogits.update(repeating: 0, count: rows * classes)
        guard counted > 0 else { return 0 }
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
}

/// Binary cross-entropy of independent sigmoid outputs (multi-label classification), with its gradient, as
/// `torch.nn.BCEWithLogitsLoss`: the mean over every output of every row.
public enum BinaryCrossEntropy {
    /// Returns the mean loss over the `count` logits and writes `dLogits = scale · (sigmoid(z) − y) / count`.
    /// `targets` holds 1 or 0 per logit.
    public static func forwardBackward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, scale: Float,
        dLogits: UnsafeMutablePointer<Float>
    ) -> Double {
        var total = 0.0
        for i in 0..<count {
            let z = logits[i], y = targets[i]
            // max(z, 0) − z·y + log(1 + e^−|z|): the loss of log(sigmoid) written so that no term overflows.
            total += Double(max(z, 0) - z * y) + Foundation.log1p(Foundation.exp(-Double(abs(z))))
            dLogits[i] = scale * (1 / (1 + FastMath.exp(-z)) - y) / Float(count)
        }
        return total / Double(count)
    }
}

/// Mean squared error of one output per row, with its gradient, as `torch.nn.MSELoss`.
public enum MeanSquaredError {
    public static func forwardBackward(
        predictions: UnsafePointer<Float>, targets: UnsafePointer<Float>, rows: Int, scale: Float,
        dPredictions: UnsafeMutablePointer<Float>
    ) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let difference = predictions[r] - targets[r]
            total += Double(difference * difference)
            dPredictions[r] = scale * 2 * difference / Float(rows)
        }
        return total / Double(rows)
    }
}
