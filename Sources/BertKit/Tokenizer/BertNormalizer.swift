import Foundation

/// BERT's normaliser, as Hugging Face's tokenizers apply it: drop control characters and map whitespace to a space;
/// surround CJK ideographs with spaces; optionally decompose (NFD) and drop non-spacing marks; optionally lower-case.
public struct BertNormalizer: Sendable, Equatable {
    public var lowercase: Bool
    /// Whether accents are stripped; `nil` follows `lowercase`, as in BERT.
    public var stripAccents: Bool?
    public var handleChineseCharacters: Bool
    /// Whether control characters are dropped and whitespace becomes a space (tokenizer.json's `clean_text`).
    public var cleanText: Bool

    public init(lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseCharacters: Bool = true, cleanText: Bool = true) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.handleChineseCharacters = handleChineseCharacters
        self.cleanText = cleanText
    }

    /// Every step maps one scalar to some scalars that all keep its origin, so the four steps run as one pass.
    func normalize(_ text: inout NormalizedText) {
        let strip = stripAccents ?? lowercase
        text.map { s, out in
            if cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { return }
                if Self.isWhitespace(s) { out.append(" "); return }
            }
            if handleChineseCharacters && Self.isChineseCharacter(s) {
                out.append(" ")
                out.append(s)
                out.append(" ")
                return
            }
            for d in strip ? Self.decomposed(s) : [s] {
                if strip && d.properties.generalCategory == .nonspacingMark { continue }
                if lowercase && d.value >= 0x80 {
                    out.append(contentsOf: d.properties.lowercaseMapping.unicodeScalars)
                } else if lowercase && d.value >= 0x41 && d.value <= 0x5A {
                    out.append(Unicode.Scalar(d.value + 0x20)!)
                } else {
                    out.append(d)
                }
            }
        }
    }

    /// Canonical decomposition (NFD) of one scalar.
    static func decomposed(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
        if s.value < 0xC0 { return [s] }
        return Array(String(s).decomposedStringWithCanonicalMapping.unicodeScalars)
    }

    /// Tab, newline and carriage return count as whitespace, not control characters.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { ScalarClass.isWhitespace(s) }

    /// "Other" characters (control, format, private use, surrogate, unassigned) except tab and newlines.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        if s.value < 0x80 { return s.value < 0x20 || s.value == 0x7F }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks that BERT splits into single characters (not Hangul or kana), as the
    /// tokenizers library lists them.
    static func isChineseCharacter(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
