/// How the special tokens go around a tokenised text or pair, and their token types: tokenizer.json's post-processor
/// (BertProcessing, RobertaProcessing and TemplateProcessing all come down to a template; ByteLevel and
/// RobertaProcessing also trim spaces off byte-level tokens' offsets).
public struct PostProcessor: Sendable {
    /// One element of a template: a text (the first or the second) or special tokens, with their token type.
    public enum Piece: Sendable, Equatable {
        case first(typeId: Int32)
        case second(typeId: Int32)
        case special(ids: [Int32], typeId: Int32)
    }

    public var single: [Piece]
    public var pair: [Piece]
    /// Whether offsets leave out the spaces a byte-level token starts or ends with, and whether a first token's
    /// single leading space was added by the pre-tokenizer (and so is kept).
    var trimsOffsets = false
    var addPrefixSpace = false

    /// No special tokens: the first text with token type 0, the second with 1.
    public static let none = PostProcessor(single: [.first(typeId: 0)], pair: [.first(typeId: 0), .second(typeId: 1)])

    /// BERT's `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, B and its `[SEP]` of token type 1.
    public static func bert(cls: Int32, sep: Int32) -> PostProcessor {
        PostProcessor(single: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep], typeId: 0)],
                      pair: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep], typeId: 0),
                             .second(typeId: 1), .special(ids: [sep], typeId: 1)])
    }

    /// RoBERTa's `<s> A </s>` and `<s> A </s></s> B </s>`, all of token type 0.
    static func roberta(cls: Int32, sep: Int32) -> PostProcessor {
        PostProcessor(single: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep], typeId: 0)],
                      pair: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep, sep], typeId: 0),
                             .second(typeId: 0), .special(ids: [sep], typeId: 0)])
    }

    /// How many special tokens the template adds to one text or to a pair.
    public func addedTokenCount(pair isPair: Bool) -> Int {
        (isPair ? pair : single).reduce(0) { count, piece in
            if case .special(let ids, _) = piece { return count + ids.count }
            return count
        }
    }

    /// How many special tokens the template for one text puts before it and after it.
    public var specialsAroundSingle: (before: Int, after: Int) {
        guard let text = single.firstIndex(where: { if case .first = $0 { true } else { false } }) else { return (addedTokenCount(pair: false), 0) }
        func count(_ pieces: ArraySlice<Piece>) -> Int {
            pieces.reduce(0) { if case .special(let ids, _) = $1 { $0 + ids.count } else { $0 } }
        }
        return (count(single[..<text]), count(single[(text + 1)...]))
    }

    /// Ids and token types of a text or pair of token ids with the special tokens around them.
    public func apply(ids first: [Int32], _ second: [Int32]?) -> (ids: [Int32], typeIds: [Int32]) {
        var ids: [Int32] = [], types: [Int32] = []
        for piece in second == nil ? single : pair {
            switch piece {
            case .first(let type): ids += first; types += Array(repeating: type, count: first.count)
            case .second(let type): ids += second ?? []; types += Array(repeating: type, count: second?.count ?? 0)
            case .special(let special, let type): ids += special; types += Array(repeating: type, count: special.count)
            }
        }
        return (ids, types)
    }

    /// Every id the templates add.
    public var specialIds: Set<Int32> {
        var ids = Set<Int32>()
        for case .special(let special, _) in single + pair { ids.formUnion(special) }
        return ids
    }

    /// The special tokens around `first` (and `second`), from a template.
    func apply(_ first: [Token], _ second: [Token]?, vocabulary: Vocabulary) -> Encoding {
        var e = Encoding()
        e.ids.reserveCapacity(first.count + (second?.count ?? 0) + 4)
        for piece in second == nil ? single : pair {
            switch piece {
            case .first(let type):
                append(first, sequence: 0, type: type, to: &e, vocabulary: vocabulary)
            case .second(let type):
                append(second ?? [], sequence: 1, type: type, to: &e, vocabulary: vocabulary)
            case .special(let ids, let type):
                for id in ids { e.append(id, type: type, offsets: 0..<0, word: nil, sequence: nil) }
            }
        }
        return e
    }

    private func append(_ tokens: [Token], sequence: Int, type: Int32, to e: inout Encoding, vocabulary: Vocabulary) {
        for (i, t) in tokens.enumerated() {
            e.append(t.id, type: type, offsets: trimsOffsets ? trimmed(t, first: i == 0, vocabulary: vocabulary) : t.offsets,
                     word: t.word, sequence: sequence)
        }
    }

    /// A byte-level token's offsets without its leading and trailing spaces (`Ġ`, or whitespace).
    private func trimmed(_ token: Token, first: Bool, vocabulary: Vocabulary) -> Range<Int> {
        trimmed(token.offsets, text: Array(vocabulary.token(token.id).unicodeScalars), first: first)
    }

    /// `offsets` without as many scalars as `text` has spaces at its start and end.
    func trimmed(_ offsets: Range<Int>, text: [Unicode.Scalar], first: Bool) -> Range<Int> {
        func isSpace(_ s: Unicode.Scalar) -> Bool { s == ByteLevelAlphabet.scalarOfByte[0x20] || ScalarClass.isWhitespace(s) }
        var leading = text.prefix(while: isSpace).count
        let trailing = text.reversed().prefix(while: isSpace).count
        var (start, end) = (offsets.lowerBound, offsets.upperBound)
        if leading > 0 {
            if (first || start == 0) && addPrefixSpace && leading == 1 { leading = 0 }
            start = min(start + leading, end)
        }
        if trailing > 0 && end >= trailing { end = max(end - trailing, start) }
        return start..<end
    }
}
