import Foundation

/// What a normaliser replaces or a pre-tokenizer splits at: a literal string, a regular expression, or a class of
/// single scalars (each matching scalar is one match, as Hugging Face's `Fn(char) -> bool` patterns).
enum SplitPattern: @unchecked Sendable {
    case string([Unicode.Scalar])
    /// The expression and its source text (which names it in errors).
    case regex(Regex<AnyRegexOutput>, source: String)
    case scalars(@Sendable (Unicode.Scalar) -> Bool)

    /// The pattern of tokenizer.json's `{"String": ...}` or `{"Regex": ...}`; `path` names it in errors.
    static func parse(_ json: Any?, file: String, path: String) throws -> SplitPattern {
        guard let object = json as? [String: Any], object.count == 1 else {
            throw CheckpointError(file: file, "\(path): expected {\"String\": ...} or {\"Regex\": ...}")
        }
        if let text = object["String"] as? String { return .string(Array(text.unicodeScalars)) }
        if let source = object["Regex"] as? String {
            do {
                return .regex(try Regex(source).matchingSemantics(.unicodeScalar), source: source)
            } catch {
                throw CheckpointError(file: file, "\(path): the regular expression \(source.debugDescription) does not compile: \(error)")
            }
        }
        throw CheckpointError(file: file, "\(path): expected {\"String\": ...} or {\"Regex\": ...}")
    }

    /// Non-overlapping, non-empty matches, left to right.
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .scalars(let test):
            return scalars.indices.filter { test(scalars[$0]) }.map { $0..<($0 + 1) }
        case .string(let literal):
            guard !literal.isEmpty, literal.count <= scalars.count else { return [] }
            var found: [Range<Int>] = []
            var i = 0
            while i + literal.count <= scalars.count {
                if scalars[i] == literal[0] && scalars[i..<(i + literal.count)].elementsEqual(literal) {
                    found.append(i..<(i + literal.count))
                    i += literal.count
                } else {
                    i += 1
                }
            }
            return found
        case .regex(let regex, _):
            let string = String(String.UnicodeScalarView(scalars))
            // Match bounds are string indices; walk the scalar view once to turn them into scalar offsets.
            var found: [Range<Int>] = []
            var cursor = string.unicodeScalars.startIndex, offset = 0
            func scalarOffset(_ index: String.Index) -> Int {
                offset += string.unicodeScalars.distance(from: cursor, to: index)
                cursor = index
                return offset
            }
            for match in string.matches(of: regex) where !match.range.isEmpty {
                let lower = scalarOffset(match.range.lowerBound)
                found.append(lower..<scalarOffset(match.range.upperBound))
            }
            return found
        }
    }
}

/// The character classes the tokenizers' parts test, as the Rust library defines them.
enum ScalarClass {
    /// Rust's `char::is_whitespace` and regular expressions' `\s`: the Unicode White_Space property.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x80 ? s.value == 0x20 || (0x09...0x0D).contains(s.value) : s.properties.isWhitespace
    }

    /// `\p{L}`.
    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return (0x41...0x5A).contains(s.value) || (0x61...0x7A).contains(s.value) }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}`.
    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return (0x30...0x39).contains(s.value) }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// Rust's `char::is_numeric` (what the Digits pre-tokenizer tests): the N categories.
    static func isNumeric(_ s: Unicode.Scalar) -> Bool { isNumber(s) }

    /// Unicode punctuation (P*), what the Punctuation pre-tokenizer tests together with ASCII punctuation.
    static func isUnicodePunctuation(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// BERT's punctuation: ASCII punctuation (which includes symbols such as `$`, `+`, `^`) and Unicode's.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) }
        return isUnicodePunctuation(s)
    }

    /// Regular expressions' `\w`: alphabetic, marks, decimal digits, connector punctuation, joiners.
    static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        if s.properties.isAlphabetic || s.properties.isJoinControl { return true }
        switch s.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
