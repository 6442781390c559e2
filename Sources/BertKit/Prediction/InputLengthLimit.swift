import Foundation

/// The most tokens an input may have: the WordPiece tokens of its texts together (`text` and `text_pair`, or
/// `question` and `context`; `[CLS]` and `[SEP]` not counted), before the model's own truncation or windowing.
/// What a server enforces so that no request can make the model read a book (`finetune serve --max-input-length`).
public struct InputLengthLimit: Sendable, Hashable {
    public var maxTokens: Int

    public init(maxTokens: Int) {
        precondition(maxTokens > 0, "an input may have at least one token")
        self.maxTokens = maxTokens
    }

    /// The records within the limit. Each longer one is an `InputTooLong` error, or with `truncate` it is cut:
    /// its longest text loses whole words from its end, then again the longest, until the tokens fit.
    public func apply(to records: [[String: Any]], tokenizer: Tokenizer, truncate: Bool) throws -> [[String: Any]] {
        try records.enumerated().map { index, record in
            let fields = record.keys.sorted().filter { record[$0] is String }
            var tokens = Dictionary(uniqueKeysWithValues: fields.map { ($0, tokenizer.tokenize(record[$0] as! String)) })
            let total = tokens.values.reduce(0) { $0 + $1.count }
            guard total > maxTokens else { return record }
            guard truncate else { throw InputTooLong(index: index, tokens: total, limit: maxTokens) }
            var cut = record
            var excess = total - maxTokens
            while excess > 0 {
                // The longest text (the first in name order on a tie) loses its last whole word.
                let field = fields.max { (tokens[$0]!.count, $1) < (tokens[$1]!.count, $0) }!
                let kept = tokens[field]!, lastWord = kept.last!.word
                let remaining = Array(kept.prefix { $0.word != lastWord })
                excess -= kept.count - remaining.count
                tokens[field] = remaining
                let scalars = Array((record[field] as! String).unicodeScalars)
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars[0..<(remaining.last?.offsets.upperBound ?? 0)])
                cut[field] = String(view)
            }
            return cut
        }
    }
}

/// An input longer than an `InputLengthLimit`.
public struct InputTooLong: Error, CustomStringConvertible, Sendable {
    /// The input's position in its request.
    public let index: Int
    public let tokens: Int
    public let limit: Int

    public var description: String {
        "inputs[\(index)] has \(tokens) tokens, more than the limit of \(limit) (--max-input-length); send \"truncate\": true to cut it"
    }
}
