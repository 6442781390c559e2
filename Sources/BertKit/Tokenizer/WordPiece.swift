/// Greedy longest-match-first WordPiece: a word becomes the longest vocabulary token that starts it, then the
/// longest prefixed token (`##` in BERT) that continues it, and so on. A word with any part not in the vocabulary,
/// or longer than `maxCharactersPerWord`, becomes the unknown token as a whole.
struct WordPiece: Sendable {
    let vocabulary: Vocabulary
    let unknownId: Int32
    var continuationPrefix: [Unicode.Scalar] = ["#", "#"]
    var maxCharactersPerWord = 100

    /// Pieces of `scalars[word]` as (id, range of scalars).
    func split(_ scalars: [Unicode.Scalar], _ word: Range<Int>) -> [(id: Int32, range: Range<Int>)] {
        if word.count > maxCharactersPerWord { return [(unknownId, word)] }
        var pieces: [(id: Int32, range: Range<Int>)] = []
        var start = word.lowerBound
        var candidate: [Unicode.Scalar] = []
        while start < word.upperBound {
            var end = min(word.upperBound, start + vocabulary.longestToken)
            var found: Int32? = nil
            while end > start {
                candidate.removeAll(keepingCapacity: true)
                if start != word.lowerBound { candidate += continuationPrefix }
                candidate += scalars[start..<end]
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
