/// A token matched in the text before the model sees it (tokenizer.json's `added_tokens`: `[CLS]`, `<mask>`, ...).
struct AddedToken: Sendable {
    let content: [Unicode.Scalar]
    let id: Int32
    let special: Bool
    /// Only matched as a whole word.
    let singleWord: Bool
    /// The whitespace to its left (`lstrip`) or right (`rstrip`) belongs to it.
    let lstrip: Bool
    let rstrip: Bool
    /// Matched in the normalised text rather than the original.
    let normalized: Bool
}

/// The added tokens of a tokenizer and how they cut a text into pieces, as the tokenizers library's
/// `AddedVocabulary`: tokens that are not normalised are found in the original text, leftmost and then longest
/// first; each text between them is normalised, and the normalised tokens are found in it the same way.
struct AddedTokens: Sendable {
    let tokens: [AddedToken]
    /// Tokens matched in the original text, and in the normalised text (with their normalised content).
    private let raw: Matcher
    private let normalizedForms: Matcher

    init(_ tokens: [AddedToken], normalizer: Normalizer?) {
        self.tokens = tokens
        raw = Matcher(tokens.filter { !$0.normalized }.map { ($0.content, $0) })
        normalizedForms = Matcher(tokens.filter(\.normalized).map { token in
            var text = NormalizedText(token.content, start: 0)
            normalizer?.normalize(&text)
            return (text.scalars, token)
        })
    }

    /// Tokens to find, longest first, and the scalars they start with (most positions start none).
    private struct Matcher {
        let tokens: [(content: [Unicode.Scalar], token: AddedToken)]
        let firstScalars: Set<Unicode.Scalar>

        init(_ tokens: [(content: [Unicode.Scalar], token: AddedToken)]) {
            self.tokens = tokens.filter { !$0.content.isEmpty }.sorted { $0.content.count > $1.content.count }
            firstScalars = Set(self.tokens.map { $0.content[0] })
        }

        /// The longest token at `s[i...]`.
        func match(_ s: [Unicode.Scalar], at i: Int) -> (content: [Unicode.Scalar], token: AddedToken)? {
            guard firstScalars.contains(s[i]) else { return nil }
            return tokens.first { $0.content.count <= s.count - i && s[i..<(i + $0.content.count)].elementsEqual($0.content) }
        }
    }

    /// A piece of the text: either an added token (with its id) or text for the model.
    struct Piece {
        var text: NormalizedText
        var id: Int32?
    }

    /// The pieces of `scalars`, the texts among them normalised by `normalizer`.
    func split(_ scalars: [Unicode.Scalar], normalizer: Normalizer?) -> [Piece] {
        let whole = NormalizedText(scalars, start: 0)
        var pieces: [Piece] = []
        for piece in Self.cut(whole, raw) {
            guard piece.id == nil else { pieces.append(piece); continue }
            var text = piece.text
            normalizer?.normalize(&text)
            pieces += Self.cut(text, normalizedForms).filter { !$0.text.isEmpty }
        }
        return pieces
    }

    /// `text` cut at the matches of `tokens` (longest first), the way `find_matches` does.
    private static func cut(_ text: NormalizedText, _ tokens: Matcher) -> [Piece] {
        let s = text.scalars
        guard !tokens.tokens.isEmpty, !s.isEmpty else { return s.isEmpty ? [] : [Piece(text: text, id: nil)] }
        var pieces: [Piece] = []
        var pieceStart = 0
        var i = 0
        while i < s.count {
            guard let (content, token) = tokens.match(s, at: i) else {
                i += 1
                continue
            }
            var start = i, stop = i + content.count
            i = stop
            if token.singleWord {
                let spaceBefore = start == 0 || !ScalarClass.isWordCharacter(s[start - 1])
                let spaceAfter = stop == s.count || !ScalarClass.isWordCharacter(s[stop])
                if !spaceBefore || !spaceAfter { continue }
            }
            if token.lstrip {
                var newStart = start
                while newStart > 0 && ScalarClass.isWhitespace(s[newStart - 1]) { newStart -= 1 }
                start = max(newStart, pieceStart)
            }
            if token.rstrip {
                while stop < s.count && ScalarClass.isWhitespace(s[stop]) { stop += 1 }
            }
            if pieceStart < start { pieces.append(Piece(text: text.slice(pieceStart..<start), id: nil)) }
            pieces.append(Piece(text: text.slice(start..<stop), id: token.id))
            pieceStart = stop
        }
        if pieceStart < s.count { pieces.append(Piece(text: text.slice(pieceStart..<s.count), id: nil)) }
        return pieces
    }
}
