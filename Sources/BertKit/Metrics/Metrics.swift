/// GLUE's metrics, computed as scikit-learn and SciPy compute them.
public enum Metrics {
    public static let known: Set<String> = ["accuracy", "f1", "matthews", "pearson", "spearman"]

    /// Computes the named metrics. Classification metrics need class predictions; correlations need values.
    public static func compute(_ names: [String], predicted: [Target], gold: [Target]) -> [String: Double] {
        var result: [String: Double] = [:]
        let labels = (predicted.compactMap(\.label), gold.compactMap(\.label))
        let values = (predicted.compactMap(\.value), gold.compactMap(\.value))
        for name in names {
            switch name {
            case "accuracy": result[name] = accuracy(labels.0, labels.1)
            case "f1": result[name] = f1(labels.0, labels.1)
            case "matthews": result[name] = matthewsCorrelation(labels.0, labels.1)
            case "pearson": result[name] = pearson(values.0.map(Double.init), values.1.map(Double.init))
            case "spearman": result[name] = spearman(values.0.map(Double.init), values.1.map(Double.init))
            default: preconditionFailure("unknown metric \(name)")
            }
        }
        return result
    }

    public static func accuracy(_ predicted: [Int], _ gold: [Int]) -> Double {
        precondition(predicted.count == gold.count && !gold.isEmpty)
        return Double(zip(predicted, gold).filter { $0 == $1 }.count) / Double(gold.count)
    }

    /// F1 of the positive class (label 1), as `sklearn.metrics.f1_score` with its binary default; 0 when there
    /// are no true or predicted positives.
    public static func f1(_ predicted: [Int], _ gold: [Int], positive: Int = 1) -> Double {
        var tp = 0, fp = 0, fn = 0
        for (p, g) in zip(predicted, gold) {
            if p == positive && g == positive { tp += 1 } else if p == positive { fp += 1 } else if g == positive { fn += 1 }
        }
        let denominator = 2 * tp + fp + fn
        return denominator == 0 ? 0 : Double(2 * tp) / Double(denominator)
    }

    /// Matthews correlation coefficient, in the multiclass form of `sklearn.metrics.matthews_corrcoef`; 0 when
    /// either side predicts a single class.
    public static func matthewsCorrelation(_ predicted: [Int], _ gold: [Int]) -> Double {
        let classes = (predicted.max() ?? 0, gold.max() ?? 0)
        let k = max(classes.0, classes.1) + 1
        var truth = [Double](repeating: 0, count: k), guessed = truth
        var correct = 0.0
        for (p, g) in zip(predicted, gold) {
            truth[g] += 1
            guessed[p] += 1
            if p == g { correct += 1 }
        }
        let n = Double(gold.count)
        let covariance = correct * n - zip(guessed, truth).reduce(0) { $0 + $1.0 * $1.1 }
        let varPredicted = n * n - guessed.reduce(0) { $0 + $1 * $1 }
        let varGold = n * n - truth.reduce(0) { $0 + $1 * $1 }
        let denominator = (varPredicted * varGold).squareRoot()
        return denominator == 0 ? 0 : covariance / denominator
    }

    /// Pearson's r (`scipy.stats.pearsonr`).
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count && x.count > 1)
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        let denominator = (sxx * syy).squareRoot()
        return denominator == 0 ? .nan : sxy / denominator
    }

    /// Spearman's rho (`scipy.stats.spearmanr`): Pearson's r of the ranks, tied values sharing their mean rank.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double {
        pearson(ranks(x), ranks(y))
    }

    /// 1-based ranks; tied values get the average of the ranks they span.
    static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        return ranks
    }
}

extension Target {
    var label: Int? { if case .label(let l) = self { l } else { nil } }
    var value: Float? { if case .value(let v) = self { v } else { nil } }
}
