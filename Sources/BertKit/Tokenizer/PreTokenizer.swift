/// BERT's pre-tokeniser: words are split at whitespace (which is dropped) and every punctuation character
/// becomes a word of its own.
enum BertPreTokenizer {
    /// Ranges of `text.scalars` holding one word each.
    static func words(_ text: AlignedText) -> [Range<Int>] {
        var words: [Range<Int>] = []
        var start: Int? = nil
        for (i, s) in text.scalars.enumerated() {
            if s.properties.isWhitespace {
                if let b = start { words.append(b..<i); start = nil }
            } else if isPunctuation(s) {
                if let b = start { words.append(b..<i); start = nil }
                words.append(i..<(i + 1))
            } else if start == nil {
                start = i
            }
        }
        if let b = start { words.append(b..<text.scalars.count) }
        return words
    }

    /// ASCII punctuation (which includes symbols such as `$`, `+`, `^`) and Unicode punctuation (P*).
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}
