import Foundation

/// SentencePiece's normalisation rules as tokenizer.json's `Precompiled` normaliser carries them: a double-array trie
/// (darts-clone) over UTF-8 byte strings whose values point into a pool of NUL-terminated replacements.
///
/// The blob: a little-endian UInt32 giving the trie's size in bytes, the trie's 32-bit units, then the pool.
struct PrecompiledCharacterMap: Sendable {
    private let units: [UInt32]
    private let pool: [UInt8]

    /// `base64` is the `precompiled_charsmap` string; `file` names it in errors.
    init(base64: String, file: String) throws {
        guard let blob = Data(base64Encoded: base64).map(Array.init) else {
            throw CheckpointError(file: file, "normalizer precompiled_charsmap: expected base64 text")
        }
        guard blob.count >= 4 else { throw CheckpointError(file: file, "normalizer precompiled_charsmap: too short (\(blob.count) bytes)") }
        let trieBytes = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        guard trieBytes % 4 == 0, 4 + trieBytes <= blob.count else {
            throw CheckpointError(file: file, "normalizer precompiled_charsmap: its trie of \(trieBytes) bytes does not fit in \(blob.count - 4)")
        }
        units = stride(from: 4, to: 4 + trieBytes, by: 4).map {
            UInt32(blob[$0]) | UInt32(blob[$0 + 1]) << 8 | UInt32(blob[$0 + 2]) << 16 | UInt32(blob[$0 + 3]) << 24
        }
        pool = Array(blob[(4 + trieBytes)...])
    }

    /// The replacement for `chunk`: that of the shortest rule matching a prefix of it (as the tokenizers library
    /// reads the trie), or nil.
    func replacement(_ chunk: [UInt8]) -> [Unicode.Scalar]? {
        guard !units.isEmpty else { return nil }
        func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }
        var node = offset(units[0])
        for byte in chunk {
            if byte == 0 { return nil }
            node ^= Int(byte)
            guard node < units.count else { return nil }
            let unit = units[node]
            guard unit & ((1 << 31) | 0xFF) == UInt32(byte) else { return nil }
            node ^= offset(unit)
            if (unit >> 8) & 1 == 1 {
                guard node < units.count else { return nil }
                let start = Int(units[node] & ((1 << 31) - 1))
                guard start <= pool.count else { return nil }
                let end = pool[start...].firstIndex(of: 0) ?? pool.count
                return Array(String(decoding: pool[start..<end], as: UTF8.self).unicodeScalars)
            }
        }
        return nil
    }

    /// Grapheme clusters shorter than 6 UTF-8 bytes are looked up whole; the others, and those without a rule,
    /// scalar by scalar.
    func normalize(_ text: inout NormalizedText) {
        var changes: [NormalizedText.Change] = []
        changes.reserveCapacity(text.count)
        var modified = false
        for grapheme in String(String.UnicodeScalarView(text.scalars)) {
            let scalars = Array(grapheme.unicodeScalars)
            let bytes = Array(String(grapheme).utf8)
            if bytes.count < 6, let new = replacement(bytes) {
                modified = true
                NormalizedText.appendReplacement(of: scalars.count, by: new, to: &changes)
                continue
            }
            for s in scalars {
                if let new = replacement(Array(String(s).utf8)) {
                    modified = true
                    NormalizedText.appendReplacement(of: 1, by: new, to: &changes)
                } else {
                    changes.append((s, 0))
                }
            }
        }
        if modified { text.transform(changes) }
    }
}
