import Foundation

/// A model's tokenizer, token for token equal to Hugging Face's (the Rust `tokenizers` library behind transformers'
/// fast tokenizers): added tokens written in the text are kept whole, the rest is normalised, split into words by
/// the pre-tokenizer, and each word into tokens by the model (WordPiece, BPE or Unigram); the post-processor puts
/// the special tokens around a text or pair. Offsets count Unicode scalars, which is what Python's string indices
/// and SQuAD's `answer_start` count.
///
/// A model folder's `tokenizer.json` describes all of this; a folder with only BERT's `vocab.txt` gets BERT's
/// tokenizer over it (`init(directory:)`).
public struct Tokenizer: Sendable {
    /// Every token by id: the model's vocabulary and the added tokens.
    public let vocabulary: Vocabulary
    /// Where the tokenizer was read from.
    public let source: Source
    public private(set) var postProcessor: PostProcessor
    /// The padding token (`[PAD]`, `<pad>`), or id 0 when the tokenizer names none (the tokenizers library's default).
    public let padId: Int32
    /// The unknown token, when the tokenizer has one.
    public let unknownId: Int32?
    /// The mask token of masked-language modelling (`[MASK]`, `<mask>`), when the tokenizer has one.
    public let maskId: Int32?
    /// Something about the tokenizer's files worth saying before it is used (a casing that contradicts its
    /// vocabulary), or nil.
    public private(set) var warning: String?

    let addedTokens: AddedTokens
    let normalizer: Normalizer?
    var preTokenizer: PreTokenizer?
    let model: TokenModel
    let decoder: TokenDecoder?

    public enum Source: Sendable, Equatable {
        /// BERT's `vocab.txt` with its casing options.
        case wordPieceVocabulary(BertNormalizer)
        /// A `tokenizer.json` (its path).
        case tokenizerFile(String)
    }

    init(vocabulary: Vocabulary, source: Source, addedTokens: [AddedToken], normalizer: Normalizer?, preTokenizer: PreTokenizer?,
         model: TokenModel, postProcessor: PostProcessor, decoder: TokenDecoder?, padId: Int32, unknownId: Int32?, maskId: Int32?) {
        self.vocabulary = vocabulary
        self.source = source
        self.addedTokens = AddedTokens(addedTokens, normalizer: normalizer)
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.padId = padId
        self.unknownId = unknownId
        self.maskId = maskId
    }

    /// BERT's WordPiece tokenizer over `vocabulary` (`[PAD] [UNK] [CLS] [SEP] [MASK]` required).
    public init(vocabulary: Vocabulary, normalizer: BertNormalizer = BertNormalizer()) throws {
        func required(_ token: String) throws -> Int32 {
            guard let id = vocabulary.id(token) else { throw CheckpointError(file: "vocab.txt", "the vocabulary has no \(token) token") }
            return id
        }
        let (pad, unknown, cls, sep, mask) = (try required("[PAD]"), try required("[UNK]"), try required("[CLS]"),
                                              try required("[SEP]"), try required("[MASK]"))
        let added = [("[PAD]", pad), ("[UNK]", unknown), ("[CLS]", cls), ("[SEP]", sep), ("[MASK]", mask)].map {
            AddedToken(content: Array($0.0.unicodeScalars), id: $0.1, special: true, singleWord: false, lstrip: false,
                       rstrip: false, normalized: false)
        }
        self.init(vocabulary: vocabulary, source: .wordPieceVocabulary(normalizer), addedTokens: added,
                  normalizer: .bert(normalizer), preTokenizer: .bert,
                  model: .wordPiece(WordPiece(vocabulary: vocabulary, unknownId: unknown)),
                  postProcessor: .bert(cls: cls, sep: sep), decoder: .wordPiece(prefix: "##", cleanup: true),
                  padId: pad, unknownId: unknown, maskId: mask)
    }

    /// The mask token, or an error saying that the tokenizer has none (masked-language modelling needs it).
    public func requiredMaskId() throws -> Int32 {
        guard let maskId else {
            throw CheckpointError(file: sourceFile, "the tokenizer has no mask token ([MASK] or <mask>, or mask_token in tokenizer_config.json)")
        }
        return maskId
    }

    /// Whether the model marks the pieces that continue a word (WordPiece's `##`, a BPE `continuing_subword_prefix`),
    /// which transformers' token-classification pipeline reads to group pieces into words.
    public var marksContinuations: Bool {
        switch model {
        case .wordPiece: true
        case .bpe(let m): !m.continuationPrefix.isEmpty
        case .unigram: false
        }
    }

    /// The file the tokenizer was read from, for errors.
    public var sourceFile: String {
        switch source {
        case .wordPieceVocabulary: "vocab.txt"
        case .tokenizerFile(let path): path
        }
    }

    /// The tokenizer of a model folder: its `tokenizer.json` when it has one (what every current Hugging Face
    /// folder ships), with the special tokens `tokenizer_config.json` names; otherwise its `vocab.txt`, with the
    /// casing options of `tokenizer_config.json` (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`).
    public init(directory: String) throws {
        let config = try Self.readConfig(directory + "/tokenizer_config.json")
        if FileManager.default.fileExists(atPath: directory + "/tokenizer.json") {
            self = try TokenizerFile.read(directory + "/tokenizer.json", config: config)
            return
        }
        let vocabulary = try Vocabulary(path: directory + "/vocab.txt")
        var normalizer = BertNormalizer()
        if let config {
            normalizer.lowercase = config["do_lower_case"] as? Bool ?? true
            normalizer.stripAccents = config["strip_accents"] as? Bool
            normalizer.handleChineseCharacters = config["tokenize_chinese_chars"] as? Bool ?? true
        }
        try self.init(vocabulary: vocabulary, normalizer: normalizer)
        // A cased reading of an uncased vocabulary makes every capitalised word [UNK], silently otherwise.
        let letters = vocabulary.tokens.filter { !$0.hasPrefix("[") }.flatMap(\.unicodeScalars).filter(\.properties.isAlphabetic)
        if !normalizer.lowercase, !letters.isEmpty, !letters.contains(where: \.properties.isUppercase) {
            warning = "\(directory)/tokenizer_config.json sets do_lower_case false, but \(directory)/vocab.txt has no capital letter: "
                + "capitalised words will all be [UNK] (set do_lower_case true for an uncased model)"
        }
    }

    /// `tokenizer_config.json` as a JSON object, or nil when the folder has none.
    static func readConfig(_ path: String) throws -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CheckpointError(file: path, "is not a JSON object")
        }
        return json
    }

    /// The tokens of `text`, without special tokens around it. Each token's word is its index among the text's
    /// words (the pre-tokenizer's pieces and the added tokens).
    public func tokenize(_ text: String) -> [Token] {
        var tokens: [Token] = []
        var word = 0
        for piece in addedTokens.split(Array(text.unicodeScalars), normalizer: normalizer) {
            if let id = piece.id {
                var offsets = piece.text.original(0..<piece.text.count)
                if postProcessor.trimsOffsets {
                    // The library trims by the token's text, which for an added token is what it matched, with the
                    // whitespace it took to its left or right.
                    offsets = postProcessor.trimmed(offsets, text: piece.text.scalars, first: tokens.isEmpty)
                }
                tokens.append(Token(id: id, offsets: offsets, word: word))
                word += 1
                continue
            }
            var words = [piece.text]
            preTokenizer?.preTokenize(&words)
            for w in words {
                for (id, range) in model.split(w.scalars, 0..<w.count) {
                    tokens.append(Token(id: id, offsets: w.original(range), word: word))
                }
                word += 1
            }
        }
        return tokens
    }

    /// The tokens of each word of a text given as words (a CoNLL sentence), as transformers encodes
    /// `is_split_into_words` input: each word as a text of its own, with a space put before it where the
    /// pre-tokenizer marks the start of a word by one (byte-level BPE, for which transformers requires
    /// `add_prefix_space=True` here; SentencePiece's `▁` is put before each word anyway).
    public func tokenize(words: [String]) -> [[Token]] {
        var spaced = self
        spaced.preTokenizer = preTokenizer?.addingPrefixSpace()
        spaced.postProcessor.addPrefixSpace = true
        return words.map(spaced.tokenize)
    }

    /// The encoding of a text or pair with the special tokens around it. With `maxLength`, the texts are truncated
    /// longest-first so that the whole encoding, special tokens included, fits. An empty second text counts as no
    /// second text, as in transformers.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        let first = tokenize(text)
        let second = pair.flatMap { $0.isEmpty ? nil : tokenize($0) }
        guard let maxLength else { return encode(first, second) }
        let budget = max(0, maxLength - postProcessor.addedTokenCount(pair: second != nil))
        let (n1, n2) = Self.truncatedLengths(first.count, second?.count ?? 0, pair: second != nil, budget: budget)
        return encode(Array(first.prefix(n1)), second.map { Array($0.prefix(n2)) })
    }

    /// Adds the special tokens around already tokenised texts.
    public func encode(_ first: [Token], _ second: [Token]?) -> Encoding {
        postProcessor.apply(first, second, vocabulary: vocabulary)
    }

    /// `tokens` (of one text) with the offsets an encoding gives them: a byte-level tokenizer's post-processor takes
    /// the spaces a token starts or ends with out of its offsets, as transformers' pipelines read them.
    public func withEncodedOffsets(_ tokens: [Token]) -> [Token] {
        guard postProcessor.trimsOffsets else { return tokens }
        let e = encode(tokens, nil)
        let offsets = e.sequenceIds.indices.filter { e.sequenceIds[$0] == 0 }.map { e.offsets[$0] }
        return zip(tokens, offsets).map { Token(id: $0.id, offsets: $1, word: $0.word) }
    }

    /// Text of `ids` as the tokenizers library decodes it (special tokens left out when `skipSpecialTokens`).
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true) -> String {
        let special = Set(addedTokens.tokens.filter(\.special).map(\.id))
        let tokens = ids.filter { !(skipSpecialTokens && special.contains($0)) && Int($0) < vocabulary.count }.map(vocabulary.token)
        return string(fromTokens: tokens)
    }

    /// Tokens (as strings) joined back into text by the tokenizer's decoder (transformers' `convert_tokens_to_string`);
    /// without a decoder, joined by spaces.
    public func string(fromTokens tokens: [String]) -> String {
        decoder?.decode(tokens) ?? tokens.joined(separator: " ")
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

/// What splits a word into tokens.
enum TokenModel: Sendable {
    case wordPiece(WordPiece)
    case bpe(BPE)
    case unigram(Unigram)

    func split(_ scalars: [Unicode.Scalar], _ word: Range<Int>) -> [(id: Int32, range: Range<Int>)] {
        switch self {
        case .wordPiece(let m): m.split(scalars, word)
        case .bpe(let m): m.split(scalars, word)
        case .unigram(let m): m.split(scalars, word)
        }
    }
}
