import Foundation

/// How tokens are joined back into text (tokenizer.json's decoder), each kind as the tokenizers library decodes:
/// every step maps the list of token strings to another, and the last list is concatenated.
indirect enum TokenDecoder: Sendable {
    /// WordPiece: a continuation (`prefix`) joins the token before it, every other token follows a space; with
    /// `cleanup`, the space before `.`, `?`, `!`, `,` and English contractions is taken back.
    case wordPiece(prefix: String, cleanup: Bool)
    /// GPT-2's byte-level symbols back to bytes, read as UTF-8 (invalid bytes become U+FFFD).
    case byteLevel
    /// SentencePiece's `▁` back to a space, dropped in the first token unless nothing was prepended.
    case metaspace(replacement: Unicode.Scalar, prependScheme: PreTokenizer.PrependScheme)
    /// The end-of-word suffix becomes a space (none after the last token).
    case bpe(suffix: String)
    /// Runs of `<0xXX>` tokens become the text of their bytes (one U+FFFD per byte if they are not UTF-8).
    case byteFallback
    /// All tokens as one.
    case fuse
    /// Up to `start` leading and `stop` trailing `content` characters off each token.
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case replace(SplitPattern, with: String)
    case sequence([TokenDecoder])

    /// `tokens` joined into text.
    func decode(_ tokens: [String]) -> String { chain(tokens).joined() }

    func chain(_ tokens: [String]) -> [String] {
        switch self {
        case .wordPiece(let prefix, let cleanup):
            // Compared scalar by scalar: as Characters, "##" and a combining mark after it would be one "#" and "#ि".
            let prefix = Array(prefix.unicodeScalars)
            return tokens.enumerated().map { i, token in
                var piece = token
                if i != 0 {
                    let scalars = Array(token.unicodeScalars)
                    piece = scalars.starts(with: prefix) ? String(String.UnicodeScalarView(scalars.dropFirst(prefix.count))) : " " + token
                }
                return cleanup ? Self.cleanedUp(piece) : piece
            }
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                let symbols = token.unicodeScalars.map { ByteLevelAlphabet.byteOfScalar[$0] }
                if symbols.allSatisfy({ $0 != nil }) { bytes += symbols.map { $0! } } else { bytes += Array(token.utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .metaspace(let replacement, let scheme):
            return tokens.enumerated().map { i, token in
                var out = String.UnicodeScalarView()
                for s in token.unicodeScalars where s != replacement || i != 0 || scheme == .never {
                    out.append(s == replacement ? " " : s)
                }
                return String(out)
            }
        case .bpe(let suffix):
            return tokens.enumerated().map { i, token in
                Self.replacing(suffix, with: i == tokens.count - 1 ? "" : " ", in: token)
            }
        case .byteFallback:
            var out: [String] = []
            var bytes: [UInt8] = []
            func flush() {
                guard !bytes.isEmpty else { return }
                if let text = String(validating: bytes, as: UTF8.self) {
                    out.append(text)
                } else {
                    out += Array(repeating: "\u{FFFD}", count: bytes.count)
                }
                bytes = []
            }
            for token in tokens {
                let u = Array(token.utf8)
                if u.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), let b = UInt8(String(token.dropFirst(3).prefix(2)), radix: 16) {
                    bytes.append(b)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var scalars = Array(token.unicodeScalars)
                var head = 0
                while head < start && head < scalars.count && scalars[head] == content { head += 1 }
                scalars.removeFirst(head)
                var tail = 0
                while tail < stop && tail < scalars.count && scalars[scalars.count - 1 - tail] == content { tail += 1 }
                scalars.removeLast(tail)
                return String(String.UnicodeScalarView(scalars))
            }
        case .replace(let pattern, let content):
            return tokens.map { token in
                var text = NormalizedText(token.unicodeScalars, start: 0)
                text.replace(pattern, with: Array(content.unicodeScalars))
                return String(String.UnicodeScalarView(text.scalars))
            }
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.chain($0) }
        }
    }

    /// The tokenizers library's clean-up of a decoded WordPiece token, in its order.
    static func cleanedUp(_ token: String) -> String {
        var piece = token
        for (spaced, joined) in cleanup { piece = replacing(spaced, with: joined, in: piece) }
        return piece
    }

    /// Every occurrence of `target` in `text` replaced, matching scalars (not Characters, which would merge a
    /// combining mark with what precedes it, nor canonical equivalents).
    static func replacing(_ target: String, with replacement: String, in text: String) -> String {
        let t = Array(target.unicodeScalars)
        guard !t.isEmpty, text.unicodeScalars.contains(t[0]) else { return text }
        var text = NormalizedText(text.unicodeScalars, start: 0)
        text.replace(.string(t), with: Array(replacement.unicodeScalars))
        return String(String.UnicodeScalarView(text.scalars))
    }

    private static let cleanup = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                                  (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
}
