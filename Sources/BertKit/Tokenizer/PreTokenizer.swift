/// A tokenizer.json pre-tokenizer: how normalised text is split into words (each of which the model then splits
/// into tokens), each kind as Hugging Face's tokenizers splits.
indirect enum PreTokenizer: Sendable {
    /// Whitespace (dropped) and punctuation (a word of its own).
    case bert
    /// GPT-2's: words by its regular expression (when `useRegex`), then each byte as a symbol of
    /// `ByteLevelAlphabet`; with `addPrefixSpace`, a space before a text that does not start with one.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// SentencePiece's: spaces become `replacement`, which also starts the text (`prependScheme`), and, with
    /// `split`, every word.
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    /// Runs of word characters and runs of other non-space characters (`\w+|[^\w\s]+`).
    case whitespace
    /// Split at whitespace.
    case whitespaceSplit
    case split(SplitPattern, SplitBehavior, invert: Bool)
    case punctuation(SplitBehavior)
    /// Numbers apart from the rest: each digit alone, or runs of them.
    case digits(individually: Bool)
    case sequence([PreTokenizer])

    enum PrependScheme: String, Sendable { case always, first, never }

    /// The same with a byte-level step's `addPrefixSpace` on.
    func addingPrefixSpace() -> PreTokenizer {
        switch self {
        case .byteLevel(_, let useRegex): .byteLevel(addPrefixSpace: true, useRegex: useRegex)
        case .sequence(let steps): .sequence(steps.map { $0.addingPrefixSpace() })
        default: self
        }
    }

    /// Splits every piece of `pieces` further.
    func preTokenize(_ pieces: inout [NormalizedText]) {
        switch self {
        case .sequence(let steps):
            for step in steps { step.preTokenize(&pieces) }
        case .metaspace(let replacement, let scheme, let split):
            var out: [NormalizedText] = []
            for var piece in pieces {
                piece.map { s, out in out.append(s == " " ? replacement : s) }
                let prepend = scheme == .always || (scheme == .first && piece.start == 0)
                if prepend && piece.scalars.first != replacement { piece.prepend([replacement]) }
                if split {
                    out += piece.split(.string([replacement]), .mergedWithNext)
                } else if !piece.isEmpty {
                    out.append(piece)
                }
            }
            pieces = out
        case .byteLevel(let addPrefixSpace, let useRegex):
            var out: [NormalizedText] = []
            for var piece in pieces {
                if addPrefixSpace && piece.scalars.first != " " { piece.prepend([" "]) }
                out += useRegex ? GPT2Words.split(piece) : piece.isEmpty ? [] : [piece]
            }
            for i in out.indices { ByteLevelAlphabet.map(&out[i]) }
            pieces = out
        default:
            pieces = pieces.flatMap(split)
        }
    }

    /// The pre-tokenizers that only split, without changing the text.
    private func split(_ piece: NormalizedText) -> [NormalizedText] {
        switch self {
        case .bert:
            return Self.bertWords(piece)
        case .whitespace:
            return Self.wordRuns(piece)
        case .whitespaceSplit:
            return piece.split(.scalars(ScalarClass.isWhitespace), .removed)
        case .split(let pattern, let behavior, let invert):
            return piece.split(pattern, behavior, invert: invert)
        case .punctuation(let behavior):
            return piece.split(.scalars(ScalarClass.isPunctuation), behavior)
        case .digits(let individually):
            return piece.split(.scalars(ScalarClass.isNumeric), individually ? .isolated : .contiguous)
        case .sequence, .metaspace, .byteLevel:
            preconditionFailure("\(self) changes the text; preTokenize handles it")
        }
    }

    /// Split at whitespace (dropped), then at punctuation (kept, each a word): both splits in one pass.
    private static func bertWords(_ piece: NormalizedText) -> [NormalizedText] {
        var words: [NormalizedText] = []
        var start: Int? = nil
        for (i, s) in piece.scalars.enumerated() {
            if ScalarClass.isWhitespace(s) {
                if let b = start { words.append(piece.slice(b..<i)); start = nil }
            } else if ScalarClass.isPunctuation(s) {
                if let b = start { words.append(piece.slice(b..<i)); start = nil }
                words.append(piece.slice(i..<(i + 1)))
            } else if start == nil {
                start = i
            }
        }
        if let b = start { words.append(piece.slice(b..<piece.count)) }
        return words
    }

    /// `\w+|[^\w\s]+`: maximal runs of word characters, and of characters that are neither word nor space.
    private static func wordRuns(_ piece: NormalizedText) -> [NormalizedText] {
        var runs: [NormalizedText] = []
        var i = 0
        let s = piece.scalars
        while i < s.count {
            if ScalarClass.isWhitespace(s[i]) { i += 1; continue }
            let word = ScalarClass.isWordCharacter(s[i])
            var end = i + 1
            while end < s.count && !ScalarClass.isWhitespace(s[end]) && ScalarClass.isWordCharacter(s[end]) == word { end += 1 }
            runs.append(piece.slice(i..<end))
            i = end
        }
        return runs
    }
}

/// GPT-2's word pattern, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, as a scanner:
/// English contractions; runs of letters, of numbers, or of other symbols, each taking one space before it; and
/// whitespace, of which the last one before a word is left to that word.
enum GPT2Words {
    static func split(_ piece: NormalizedText) -> [NormalizedText] {
        let s = piece.scalars
        var words: [NormalizedText] = []
        var i = 0
        while i < s.count {
            let end = wordEnd(s, from: i)
            words.append(piece.slice(i..<end))
            i = end
        }
        return words
    }

    private enum Kind { case letter, number, other, space }

    private static func kind(_ s: Unicode.Scalar) -> Kind {
        if ScalarClass.isWhitespace(s) { return .space }
        if ScalarClass.isLetter(s) { return .letter }
        if ScalarClass.isNumber(s) { return .number }
        return .other
    }

    /// Where the match starting at `i` ends.
    private static func wordEnd(_ s: [Unicode.Scalar], from i: Int) -> Int {
        if s[i] == "'" && i + 1 < s.count {
            switch s[i + 1] {
            case "s", "t", "m", "d": return i + 2
            case "r" where i + 2 < s.count && s[i + 2] == "e": return i + 3
            case "v" where i + 2 < s.count && s[i + 2] == "e": return i + 3
            case "l" where i + 2 < s.count && s[i + 2] == "l": return i + 3
            default: break
            }
        }
        var start = i
        if s[i] == " " && i + 1 < s.count && kind(s[i + 1]) != .space { start = i + 1 }
        let k = kind(s[start])
        if k != .space {
            var end = start + 1
            while end < s.count && kind(s[end]) == k { end += 1 }
            return end
        }
        // Whitespace: all of it at the end of the text; otherwise all but the last, unless that leaves nothing.
        var end = i + 1
        while end < s.count && kind(s[end]) == .space { end += 1 }
        if end < s.count && end - i > 1 { return end - 1 }
        return end
    }
}
