/// Multi-label scores as scikit-learn computes them: `f1_score` with `average="micro"` and `"macro"` (a label
/// with no true and no predicted positives scores 0, `zero_division=0`), per label, and `accuracy_score` on the
/// label sets (subset accuracy: the whole set right).
public enum MultiLabelMetrics {
    public struct Score: Sendable {
        public let microF1, macroF1, microPrecision, microRecall, subsetAccuracy: Double
        public let perLabelF1: [Double]
    }

    public static func score(gold: [Set<Int>], predicted: [Set<Int>], labels: Int) -> Score {
        var truePositives = [Int](repeating: 0, count: labels), falsePositives = truePositives, falseNegatives = truePositives
        var exact = 0
        for (g, p) in zip(gold, predicted) {
            if g == p { exact += 1 }
            for l in p { if g.contains(l) { truePositives[l] += 1 } else { falsePositives[l] += 1 } }
            for l in g where !p.contains(l) { falseNegatives[l] += 1 }
        }
        func f1(_ tp: Int, _ fp: Int, _ fn: Int) -> Double { 2 * tp + fp + fn == 0 ? 0 : Double(2 * tp) / Double(2 * tp + fp + fn) }
        let (tp, fp, fn) = (truePositives.reduce(0, +), falsePositives.reduce(0, +), falseNegatives.reduce(0, +))
        let perLabel = (0..<labels).map { f1(truePositives[$0], falsePositives[$0], falseNegatives[$0]) }
        return Score(microF1: f1(tp, fp, fn), macroF1: perLabel.reduce(0, +) / Double(max(1, labels)),
                     microPrecision: tp + fp == 0 ? 0 : Double(tp) / Double(tp + fp),
                     microRecall: tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn),
                     subsetAccuracy: Double(exact) / Double(max(1, gold.count)), perLabelF1: perLabel)
    }
}
