/// Entity-level precision, recall and F1 as conlleval and seqeval (default mode) compute them: entities are
/// read from IOB tags (an `I-X` that does not continue an X entity starts one, as conlleval does), and a
/// predicted entity counts only if its type and both boundaries equal a gold entity's.
public enum EntityMetrics {
    /// An entity: its type and its first and last word, counted across all sentences.
    public struct Entity: Hashable, Sendable {
        public let type: String
        public let first: Int
        public let last: Int
    }

    public struct Score: Sendable, Equatable {
        public let precision: Double
        public let recall: Double
        public let f1: Double
        public let gold: Int
        public let predicted: Int
        public let correct: Int

        init(correct: Int, predicted: Int, gold: Int) {
            self.correct = correct
            self.predicted = predicted
            self.gold = gold
            precision = predicted == 0 ? 0 : Double(correct) / Double(predicted)
            recall = gold == 0 ? 0 : Double(correct) / Double(gold)
            f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
        }
    }

    /// Entities of tagged sentences, numbering words across sentences (sentences never share an entity).
    public static func entities(_ sentences: [[String]]) -> [Entity] {
        var found: [Entity] = []
        var offset = 0
        for tags in sentences {
            var start: Int? = nil
            var currentType = ""
            for (i, tag) in (tags + ["O"]).enumerated() {
                let (prefix, type) = split(tag)
                let (previousPrefix, previousType) = i == 0 ? ("O", "") : split(tags[i - 1])
                if let s = start, endsChunk(previousPrefix, prefix, previousType, type) {
                    found.append(Entity(type: currentType, first: offset + s, last: offset + i - 1))
                    start = nil
                }
                if startsChunk(previousPrefix, prefix, previousType, type) {
                    start = i
                    currentType = type
                }
            }
            offset += tags.count
        }
        return found
    }

    /// Overall and per-type scores, and the fraction of words whose tag is right.
    public static func score(gold: [[String]], predicted: [[String]]) -> (overall: Score, byType: [String: Score], accuracy: Double) {
        precondition(gold.count == predicted.count && zip(gold, predicted).allSatisfy { $0.count == $1.count },
                     "gold and predicted tags must have the same shape")
        let goldEntities = entities(gold), predictedEntities = entities(predicted)
        let correct = Set(goldEntities).intersection(predictedEntities)
        var byType: [String: Score] = [:]
        for type in Set(goldEntities.map(\.type)).union(predictedEntities.map(\.type)) {
            byType[type] = Score(correct: correct.filter { $0.type == type }.count,
                                 predicted: predictedEntities.filter { $0.type == type }.count,
                                 gold: goldEntities.filter { $0.type == type }.count)
        }
        let words = gold.reduce(0) { $0 + $1.count }
        let right = zip(gold, predicted).reduce(0) { total, pair in total + zip(pair.0, pair.1).filter { $0 == $1 }.count }
        return (Score(correct: correct.count, predicted: predictedEntities.count, gold: goldEntities.count), byType,
                words == 0 ? 0 : Double(right) / Double(words))
    }

    /// `B-PER` → ("B", "PER"); `O` → ("O", "").
    static func split(_ tag: String) -> (String, String) {
        guard tag != "O", let dash = tag.firstIndex(of: "-") else { return (tag == "O" ? "O" : String(tag.prefix(1)), "") }
        return (String(tag[..<dash]), String(tag[tag.index(after: dash)...]))
    }

    static func endsChunk(_ previous: String, _ current: String, _ previousType: String, _ type: String) -> Bool {
        if previous == "E" || previous == "S" { return true }
        if (previous == "B" || previous == "I") && (current == "B" || current == "S" || current == "O") { return true }
        return previous != "O" && previousType != type
    }

    static func startsChunk(_ previous: String, _ current: String, _ previousType: String, _ type: String) -> Bool {
        if current == "B" || current == "S" { return true }
        if (previous == "E" || previous == "S" || previous == "O") && (current == "E" || current == "I") { return true }
        return current != "O" && previousType != type
    }
}
