import Foundation

/// Text in the middle of tokenisation: Unicode scalars, each remembering the index of the scalar of the
/// original text it came from, so that tokens can be mapped back to character offsets.
struct AlignedText {
    var scalars: [Unicode.Scalar] = []
    var origins: [Int] = []

    mutating func append(_ scalar: Unicode.Scalar, from origin: Int) {
        scalars.append(scalar)
        origins.append(origin)
    }
}

/// BERT's normaliser, as the Hugging Face tokenizer applies it: drop control characters and map whitespace
/// to a space; surround CJK ideographs with spaces; optionally decompose (NFD) and drop non-spacing marks;
/// optionally lower-case.
public struct BertNormalizer: Sendable {
    public var lowercase: Bool
    /// Whether accents are stripped; `nil` follows `lowercase`, as in BERT.
    public var stripAccents: Bool?
    public var handleChineseCharacters: Bool

    public init(lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseCharacters: Bool = true) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.handleChineseCharacters = handleChineseCharacters
    }

    /// Normalises `scalars[range]`, whose first scalar has index `range.lowerBound` in the original text.
    func normalize(_ scalars: [Unicode.Scalar], _ range: Range<Int>) -> AlignedText {
        let strip = stripAccents ?? lowercase
        var out = AlignedText()
        out.scalars.reserveCapacity(range.count)
        out.origins.reserveCapacity(range.count)
        for i in range {
            let s = scalars[i]
            if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
            if Self.isWhitespace(s) {
                out.append(" ", from: i)
                continue
            }
            if handleChineseCharacters && Self.isChineseCharacter(s) {
                out.append(" ", from: i)
                out.append(s, from: i)
                out.append(" ", from: i)
                continue
            }
            for d in strip ? Self.decomposed(s) : [s] {
                if strip && d.properties.generalCategory == .nonspacingMark { continue }
                if lowercase && d.value >= 0x80 {
                    for l in d.properties.lowercaseMapping.unicodeScalars { out.append(l, from: i) }
                } else if lowercase && d.value >= 0x41 && d.value <= 0x5A {
                    out.append(Unicode.Scalar(d.value + 0x20)!, from: i)
                } else {
                    out.append(d, from: i)
                }
            }
        }
        return out
    }

    /// Canonical decomposition (NFD) of one scalar.
    static func decomposed(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
        if s.value < 0xC0 { return [s] }
        return Array(String(s).decomposedStringWithCanonicalMapping.unicodeScalars)
    }

    /// Tab, newline and carriage return count as whitespace, not control characters.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// "Other" characters (control, format, private use, surrogate, unassigned) except tab and newlines.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks that BERT splits into single characters (not Hangul or kana).
    static func isChineseCharacter(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
