/// SentencePiece's Unigram model as Hugging Face's tokenizers apply it: the segmentation of a word into vocabulary
/// tokens with the highest total score (Viterbi), a character that no token covers alone costing the lowest score
/// minus 10 as the unknown token; consecutive unknowns are fused into one.
struct Unigram: Sendable {
    let vocabulary: Vocabulary
    let scores: [Double]
    let unknownId: Int32?
    /// The ids of `<0x00>` ... `<0xFF>` (nil for those the vocabulary lacks), when byte fallback is on.
    let byteIds: [Int32?]?
    private let trie: ScalarTrie
    private let unknownScore: Double

    init(vocabulary: Vocabulary, scores: [Double], unknownId: Int32?, byteIds: [Int32?]?) {
        self.vocabulary = vocabulary
        self.scores = scores
        self.unknownId = unknownId
        self.byteIds = byteIds
        trie = ScalarTrie(vocabulary.tokens)
        unknownScore = (scores.min() ?? 0) - 10
    }

    /// Tokens of `scalars[word]` as (id, range of scalars).
    func split(_ scalars: [Unicode.Scalar], _ word: Range<Int>) -> [(id: Int32, range: Range<Int>)] {
        guard !word.isEmpty else { return [] }
        let n = word.count
        // best[e]: the best path over the first e scalars: its score, where its last token starts, and that token.
        var score = [Double](repeating: 0, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        var token = [Int32](repeating: -1, count: n + 1)
        for start in 0..<n where start == 0 || from[start] >= 0 {
            var coversOne = false
            trie.prefixes(of: scalars, from: word.lowerBound + start, to: word.upperBound) { id, length in
                let end = start + length
                let candidate = score[start] + scores[Int(id)]
                if from[end] < 0 || candidate > score[end] {
                    score[end] = candidate
                    from[end] = start
                    token[end] = id
                }
                if length == 1 { coversOne = true }
            }
            if !coversOne, let unknownId {
                let candidate = score[start] + unknownScore
                if from[start + 1] < 0 || candidate > score[start + 1] {
                    score[start + 1] = candidate
                    from[start + 1] = start
                    token[start + 1] = unknownId
                }
            }
        }
        // Back from the end; runs of unknowns fuse.
        var pieces: [(id: Int32, range: Range<Int>)] = []
        var end = n
        while end > 0 {
            let start = from[end]
            guard start >= 0 else { return [] }  // no path (no unknown token): nothing, as the library
            let range = (word.lowerBound + start)..<(word.lowerBound + end)
            if token[end] == unknownId, let last = pieces.last, last.id == unknownId {
                pieces[pieces.count - 1].range = range.lowerBound..<last.range.upperBound
            } else {
                pieces.append((token[end], range))
            }
            end = start
        }
        pieces.reverse()
        guard let byteIds, let unknownId else { return pieces }
        // Byte fallback: an unknown piece becomes its UTF-8 bytes' tokens when the vocabulary has them all.
        return pieces.flatMap { piece -> [(id: Int32, range: Range<Int>)] in
            guard piece.id == unknownId else { return [piece] }
            let bytes = Array(String(String.UnicodeScalarView(scalars[piece.range])).utf8)
            guard bytes.allSatisfy({ byteIds[Int($0)] != nil }) else { return [piece] }
            return bytes.map { (byteIds[Int($0)]!, piece.range) }
        }
    }
}

/// A trie over the vocabulary's tokens as scalar sequences: one table from (node, scalar) to child node.
struct ScalarTrie: Sendable {
    private var children: [UInt64: Int32] = [:]
    /// The token id ending at each node, or -1.
    private var ids: [Int32] = [-1]

    init(_ tokens: [String]) {
        for (id, token) in tokens.enumerated() {
            var node: Int32 = 0
            for s in token.unicodeScalars {
                let key = UInt64(node) << 21 | UInt64(s.value)
                if let child = children[key] {
                    node = child
                } else {
                    let child = Int32(ids.count)
                    ids.append(-1)
                    children[key] = child
                    node = child
                }
            }
            // A repeated token keeps its last id, as the tokenizers library's Unigram does.
            if node != 0 { ids[Int(node)] = Int32(id) }
        }
    }

    /// Calls `body(id, length)` for every token that `scalars[start..<end]` starts with, shortest first.
    func prefixes(of scalars: [Unicode.Scalar], from start: Int, to end: Int, _ body: (Int32, Int) -> Void) {
        var node: Int32 = 0
        var i = start
        while i < end, let child = children[UInt64(node) << 21 | UInt64(scalars[i].value)] {
            node = child
            i += 1
            if ids[Int(node)] >= 0 { body(ids[Int(node)], i - start) }
        }
    }
}
