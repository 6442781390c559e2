import Foundation

/// A tokenizer.json normaliser: how text is cleaned before it is split, each kind as Hugging Face's tokenizers
/// applies it, keeping every scalar's origin.
indirect enum Normalizer: Sendable {
    case bert(BertNormalizer)
    case unicode(UnicodeForm)
    case lowercase
    /// Drops combining marks (meant to follow NFD or NFKD).
    case stripAccents
    case replace(SplitPattern, with: [Unicode.Scalar])
    /// SentencePiece's character map.
    case precompiled(PrecompiledCharacterMap)
    case prepend([Unicode.Scalar])
    case strip(left: Bool, right: Bool)
    /// Each UTF-8 byte as the printable scalar GPT-2's byte-level alphabet gives it.
    case byteLevel
    case sequence([Normalizer])

    enum UnicodeForm: String, Sendable { case nfc = "NFC", nfd = "NFD", nfkc = "NFKC", nfkd = "NFKD" }

    func normalize(_ text: inout NormalizedText) {
        switch self {
        case .bert(let bert):
            bert.normalize(&text)
        case .unicode(let form):
            Self.normalize(&text, form)
        case .lowercase:
            text.map { s, out in out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars) }
        case .stripAccents:
            text.map { s, out in if !Self.isCombiningMark(s) { out.append(s) } }
        case .replace(let pattern, let content):
            text.replace(pattern, with: content)
        case .precompiled(let map):
            map.normalize(&text)
        case .prepend(let prefix):
            text.prepend(prefix)
        case .strip(let left, let right):
            text.strip(left: left, right: right)
        case .byteLevel:
            ByteLevelAlphabet.map(&text)
        case .sequence(let normalizers):
            for n in normalizers { n.normalize(&text) }
        }
    }

    /// A Unicode normal form, one grapheme cluster at a time (normalisation does not reach across them), each
    /// replaced as a unit: its first scalars take the origins of the old ones in order, extra ones are inserted,
    /// and surplus old ones are removed.
    static func normalize(_ text: inout NormalizedText, _ form: UnicodeForm) {
        if text.scalars.allSatisfy({ $0.value < 0x80 }) { return }
        var changes: [NormalizedText.Change] = []
        changes.reserveCapacity(text.count)
        var changed = false
        for grapheme in String(String.UnicodeScalarView(text.scalars)) {
            let old = Array(grapheme.unicodeScalars)
            let normalized: String
            switch form {
            case .nfc: normalized = String(grapheme).precomposedStringWithCanonicalMapping
            case .nfd: normalized = String(grapheme).decomposedStringWithCanonicalMapping
            case .nfkc: normalized = String(grapheme).precomposedStringWithCompatibilityMapping
            case .nfkd: normalized = String(grapheme).decomposedStringWithCompatibilityMapping
            }
            let new = Array(normalized.unicodeScalars)
            if new == old {
                for s in old { changes.append((s, 0)) }
            } else {
                changed = true
                NormalizedText.appendReplacement(of: old.count, by: new, to: &changes)
            }
        }
        if changed { text.transform(changes) }
    }

    /// Unicode's mark categories (Mn, Mc, Me), which StripAccents drops.
    static func isCombiningMark(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }
}

/// GPT-2's byte-level alphabet: every byte value as a printable scalar (printable Latin-1 bytes as themselves, the
/// others from U+0100 on), so that any text becomes a string over 256 symbols without spaces or control characters.
enum ByteLevelAlphabet {
    static let scalarOfByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let byteOfScalar: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (b, s) in scalarOfByte.enumerated() { map[s] = UInt8(b) }
        return map
    }()

    /// Each scalar becomes its UTF-8 bytes' symbols, all with its origin.
    static func map(_ text: inout NormalizedText) {
        text.map { s, out in
            for b in String(s).utf8 { out.append(scalarOfByte[Int(b)]) }
        }
    }
}
