import Foundation

/// BERT's WordPiece tokenizer, token for token equal to Hugging Face's (Rust-backed) `BertTokenizer`:
/// special tokens written in the text are kept whole, the rest is normalised (`BertNormalizer`), split into
/// words at whitespace and punctuation, and each word into WordPiece tokens. Offsets count Unicode scalars,
/// which is what Python's string indices and SQuAD's `answer_start` count.
public struct BertTokenizer: Sendable {
    public let vocabulary: Vocabulary
    public let normalizer: BertNormalizer
    public let padId, unknownId, clsId, sepId, maskId: Int32
    private let wordPiece: WordPiece
    /// Special tokens recognised verbatim in input text, longest first.
    private let specialTokens: [(scalars: [Unicode.Scalar], id: Int32)]

    public init(vocabulary: Vocabulary, normalizer: BertNormalizer = BertNormalizer()) throws {
        func required(_ token: String) throws -> Int32 {
            guard let id = vocabulary.id(token) else {
                throw CheckpointError(file: "vocab.txt", "the vocabulary has no \(token) token")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.normalizer = normalizer
        padId = try required("[PAD]")
        unknownId = try required("[UNK]")
        clsId = try required("[CLS]")
        sepId = try required("[SEP]")
        maskId = try required("[MASK]")
        wordPiece = WordPiece(vocabulary: vocabulary, unknownId: unknownId)
        specialTokens = [("[MASK]", maskId), ("[PAD]", padId), ("[UNK]", unknownId), ("[CLS]", clsId), ("[SEP]", sepId)]
            .map { (Array($0.0.unicodeScalars), $0.1) }
    }

    /// The tokenizer of a model folder: its `vocab.txt`, with the casing options of `tokenizer_config.json`
    /// (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`) when present.
    public init(directory: String) throws {
        let vocabulary = try Vocabulary(path: directory + "/vocab.txt")
        var normalizer = BertNormalizer()
        let configPath = directory + "/tokenizer_config.json"
        if let data = FileManager.default.contents(atPath: configPath) {
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw CheckpointError(file: configPath, "is not a JSON object")
            }
            normalizer.lowercase = json["do_lower_case"] as? Bool ?? true
            normalizer.stripAccents = json["strip_accents"] as? Bool
            normalizer.handleChineseCharacters = json["tokenize_chinese_chars"] as? Bool ?? true
        }
        try self.init(vocabulary: vocabulary, normalizer: normalizer)
        // A cased reading of an uncased vocabulary makes every capitalised word [UNK], silently otherwise.
        let letters = vocabulary.tokens.filter { !$0.hasPrefix("[") }.flatMap(\.unicodeScalars).filter(\.properties.isAlphabetic)
        if !normalizer.lowercase, !letters.isEmpty, !letters.contains(where: \.properties.isUppercase) {
            warning = "\(configPath) sets do_lower_case false, but \(directory)/vocab.txt has no capital letter: "
                + "capitalised words will all be [UNK] (set do_lower_case true for an uncased model)"
        }
    }

    /// Something about the tokenizer's files worth saying before it is used (a casing that contradicts its
    /// vocabulary), or nil.
    public private(set) var warning: String?

    /// WordPiece tokens of `text`, without special tokens around it.
    public func tokenize(_ text: String) -> [Token] {
        let scalars = Array(text.unicodeScalars)
        var tokens: [Token] = []
        var word = 0
        var segmentStart = 0
        var i = 0
        while i < scalars.count {
            guard let special = specialToken(at: i, in: scalars) else { i += 1; continue }
            tokenizeSegment(scalars, segmentStart..<i, into: &tokens, word: &word)
            tokens.append(Token(id: special.id, offsets: i..<(i + special.length), word: word))
            word += 1
            i += special.length
            segmentStart = i
        }
        tokenizeSegment(scalars, segmentStart..<scalars.count, into: &tokens, word: &word)
        return tokens
    }

    private func specialToken(at i: Int, in scalars: [Unicode.Scalar]) -> (id: Int32, length: Int)? {
        guard scalars[i] == "[" else { return nil }
        for special in specialTokens where i + special.scalars.count <= scalars.count {
            if scalars[i..<(i + special.scalars.count)].elementsEqual(special.scalars) {
                return (special.id, special.scalars.count)
            }
        }
        return nil
    }

    private func tokenizeSegment(_ scalars: [Unicode.Scalar], _ range: Range<Int>, into tokens: inout [Token], word: inout Int) {
        guard !range.isEmpty else { return }
        let normalized = normalizer.normalize(scalars, range)
        for w in BertPreTokenizer.words(normalized) {
            for piece in wordPiece.split(normalized.scalars, w) {
                let start = normalized.origins[piece.range.lowerBound]
                let end = normalized.origins[piece.range.upperBound - 1] + 1
                tokens.append(Token(id: piece.id, offsets: start..<end, word: word))
            }
            word += 1
        }
    }

    /// Tokens joined back into text as transformers' `convert_tokens_to_string` does with BERT's WordPiece
    /// decoder: a `##` continuation joins the token before it (but not as the first token), every other token
    /// follows a space, and the space before `.`, `?`, `!`, `,` and English contractions is taken back.
    public static func string(fromTokens tokens: [String]) -> String {
        var text = ""
        for (i, token) in tokens.enumerated() {
            var piece = i == 0 ? token : token.hasPrefix("##") ? String(token.dropFirst(2)) : " " + token
            for (spaced, joined) in Self.cleanup { piece = piece.replacingOccurrences(of: spaced, with: joined) }
            text += piece
        }
        return text
    }

    /// The tokenizers library's clean-up of a decoded token, in its order.
    private static let cleanup = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                                  (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]

    /// `[CLS] A [SEP]`, or `[CLS] A [SEP] B [SEP]` for a pair. With `maxLength`, the texts are truncated
    /// longest-first so that the whole encoding, special tokens included, fits. An empty second text counts
    /// as no second text, as in transformers.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        let first = tokenize(text)
        let second = pair.flatMap { $0.isEmpty ? nil : tokenize($0) }
        guard let maxLength else { return encode(first, second) }
        let budget = max(0, maxLength - (second == nil ? 2 : 3))
        let (n1, n2) = Self.truncatedLengths(first.count, second?.count ?? 0, pair: second != nil, budget: budget)
        return encode(Array(first.prefix(n1)), second.map { Array($0.prefix(n2)) })
    }

    /// Adds the special tokens around already tokenised texts.
    public func encode(_ first: [Token], _ second: [Token]?) -> Encoding {
        var e = Encoding()
        e.append(clsId, type: 0, offsets: 0..<0, word: nil, sequence: nil)
        for t in first { e.append(t.id, type: 0, offsets: t.offsets, word: t.word, sequence: 0) }
        e.append(sepId, type: 0, offsets: 0..<0, word: nil, sequence: nil)
        if let second {
            for t in second { e.append(t.id, type: 1, offsets: t.offsets, word: t.word, sequence: 1) }
            e.append(sepId, type: 1, offsets: 0..<0, word: nil, sequence: nil)
        }
        return e
    }

    /// Longest-first truncation: the shorter text keeps all it can, and the longer one gets the rest;
    /// when both exceed half the budget, each gets half, the odd token going to the one that was longer.
    static func truncatedLengths(_ a: Int, _ b: Int, pair: Bool, budget: Int) -> (Int, Int) {
        guard pair else { return (min(a, budget), 0) }
        guard a + b > budget else { return (a, b) }
        let swapped = a > b
        let (short, long) = swapped ? (b, a) : (a, b)
        var keepShort = short, keepLong = long
        if short > budget { keepLong = short } else { keepLong = max(short, budget - short) }
        if keepShort + keepLong > budget {
            keepShort = budget / 2
            keepLong = keepShort + budget % 2
        }
        keepShort = min(keepShort, short)
        keepLong = min(keepLong, long)
        return swapped ? (keepLong, keepShort) : (keepShort, keepLong)
    }
}
