/// Greedy longest-match-first WordPiece: a word becomes the longest vocabulary token that starts it, then
/// the longest `##`-prefixed token that continues it, and so on. A word with any part not in the vocabulary,
/// or longer than `maxCharactersPerWord`, becomes the unknown token as a whole.
struct WordPiece {
    let vocabulary: Vocabulary
    let unknownId: Int32
    let continuationPrefix: [Unicode.Scalar] = ["#", "#"]
    let maxCharactersPerWord = 100

    /// Pieces of `scalars[word]` as (id, range of scalars).
    func split(_ scalars: [Unicode.Scalar], _ word: Range<Int>) -> [(id: Int32, range: Range<Int>)] {
        if word.count > maxCharactersPerWord { return [(unknownId, word)] }
        var pieces: [(id: Int32, range: Range<Int>)] = []
        var start = word.lowerBound
        while start < word.upperBound {
            var end = min(word.upperBound, start + vocabulary.longestToken)
            var found: Int32? = nil
            while end > start {
                let candidate = (start == word.lowerBound ? [] : continuationPrefix) + scalars[start..<end]
                if let id = vocabulary.id(scalars: candidate) {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [(unknownId, word)] }
            pieces.append((id, start..<end))
            start = end
        }
        return pieces
    }
}
