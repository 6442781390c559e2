import Foundation

/// Exact match and F1 as SQuAD v1.1's official `evaluate-v1.1.py` computes them: answers are normalised
/// (lower case, punctuation removed, the articles a/an/the removed, whitespace collapsed), compared with each
/// gold answer, and the best score over the gold answers counts. Totals are percentages.
public enum SQuADMetrics {
    /// Python's `string.punctuation`.
    static let punctuation = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars)

    public static func normalize(_ text: String) -> String {
        let lowered = text.lowercased()
        let withoutPunctuation = String(String.UnicodeScalarView(lowered.unicodeScalars.filter { !punctuation.contains($0) }))
        return words(removingArticles(withoutPunctuation)).joined(separator: " ")
    }

    /// Python's `re.sub(r'\b(a|an|the)\b', ' ', text)`: an article between word boundaries becomes a space.
    static func removingArticles(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        // Python's \w: letters (L*), numeric characters and the underscore.
        func isWord(_ i: Int) -> Bool {
            guard i >= 0 && i < scalars.count else { return false }
            let p = scalars[i].properties
            switch p.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
            default: return p.numericType != nil || scalars[i] == "_"
            }
        }
        var out = String.UnicodeScalarView()
        var i = 0
        outer: while i < scalars.count {
            if !isWord(i - 1) {
                for article in ["the", "an", "a"] {
                    let a = Array(article.unicodeScalars)
                    if i + a.count <= scalars.count && scalars[i..<(i + a.count)].elementsEqual(a) && !isWord(i + a.count) {
                        out.append(" ")
                        i += a.count
                        continue outer
                    }
                }
            }
            out.append(scalars[i])
            i += 1
        }
        return String(out)
    }

    /// Python's `str.split()`: runs of whitespace separate words.
    static func words(_ text: String) -> [String] {
        text.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace || (0x1C...0x1F).contains($0.value) })
            .map { String(String.UnicodeScalarView($0)) }
    }

    public static func exactMatch(_ prediction: String, _ gold: String) -> Bool {
        normalize(prediction) == normalize(gold)
    }

    public static func f1(_ prediction: String, _ gold: String) -> Double {
        let predicted = words(normalize(prediction)), truth = words(normalize(gold))
        var counts: [String: Int] = [:]
        for w in truth { counts[w, default: 0] += 1 }
        var same = 0
        for w in predicted where (counts[w] ?? 0) > 0 {
            counts[w]! -= 1
            same += 1
        }
        guard same > 0 else { return 0 }
        let precision = Double(same) / Double(predicted.count), recall = Double(same) / Double(truth.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// `exact_match` and `f1` in percent over `examples`; a question without a prediction scores 0.
    public static func evaluate(_ examples: [SQuADExample], predictions: [String: String]) -> [String: Double] {
        var exact = 0.0, overlap = 0.0
        for example in examples {
            guard let prediction = predictions[example.id] else { continue }
            let golds = example.answers.map(\.text)
            exact += golds.contains { exactMatch(prediction, $0) } ? 1 : 0
            overlap += golds.map { f1(prediction, $0) }.max() ?? 0
        }
        let n = Double(max(1, examples.count))
        return ["exact_match": 100 * exact / n, "f1": 100 * overlap / n]
    }

    /// SQuAD v2.0's official `evaluate-v2.0.py` (without a null-odds file), for files with unanswerable
    /// questions: gold answers that normalise to nothing are dropped and an unanswerable question's gold is "";
    /// an empty prediction or gold scores 1 only against an empty other. Unlike v1.1, a question without a
    /// prediction is left out of the totals. Returns `exact_match`, `f1` and `total`, and the same over the
    /// questions with answers (`has_answer_…`) and without (`no_answer_…`) when there are any.
    public static func evaluateV2(_ examples: [SQuADExample], predictions: [String: String]) -> [String: Double] {
        var scores: [(exact: Double, f1: Double, hasAnswer: Bool)] = []
        for example in examples {
            guard let prediction = predictions[example.id] else { continue }
            let answered = example.answers.map(\.text).filter { !normalize($0).isEmpty }
            let golds = answered.isEmpty ? [""] : answered
            scores.append((golds.contains { exactMatch(prediction, $0) } ? 1 : 0,
                           golds.map { f1V2(prediction, $0) }.max()!, !example.answers.isEmpty))
        }
        var metrics: [String: Double] = [:]
        for (prefix, chosen) in [("", scores), ("has_answer_", scores.filter(\.hasAnswer)),
                                 ("no_answer_", scores.filter { !$0.hasAnswer })] where !chosen.isEmpty {
            let n = Double(chosen.count)
            metrics[prefix + "exact_match"] = 100 * chosen.map(\.exact).reduce(0, +) / n
            metrics[prefix + "f1"] = 100 * chosen.map(\.f1).reduce(0, +) / n
            metrics[prefix + "total"] = n
        }
        return metrics
    }

    /// v2.0's F1: as v1.1's, except that an empty prediction or gold scores 1 against an empty other.
    static func f1V2(_ prediction: String, _ gold: String) -> Double {
        let predicted = words(normalize(prediction)), truth = words(normalize(gold))
        if predicted.isEmpty || truth.isEmpty { return predicted == truth ? 1 : 0 }
        return f1(prediction, gold)
    }
}
