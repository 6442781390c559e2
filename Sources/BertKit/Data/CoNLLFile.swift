import Foundation

/// A sentence of a CoNLL-style column file: its words, their tags, and the line of its first word.
public struct TaggedSentence: Sendable, Equatable {
    public var words: [String]
    public var tags: [String]
    public let line: Int

    package init(words: [String], tags: [String], line: Int) {
        (self.words, self.tags, self.line) = (words, tags, line)
    }
}

/// How chunk tags mark where an entity starts.
public enum TagScheme: String, Codable, Sendable {
    /// `B-` starts every entity (the CoNLL-2003 files most tools use).
    case iob2 = "IOB2"
    /// `B-` only starts an entity that directly follows one of the same type (the original CoNLL-2003 release).
    case iob1 = "IOB1"
}

/// CoNLL-style column files: one token per line with space- (or tab-) separated columns, a blank line between
/// sentences, `-DOCSTART-` lines between documents.
public enum CoNLLFile {
    /// Reads sentences, taking words from `tokenColumn` and tags from `tagColumn` (negative counts from the
    /// end), converting IOB1 to IOB2 when `scheme` says the file is IOB1. A tag outside `labels` (after the
    /// conversion) is an error naming the file and line. Without `labels`, only the words are read (prediction
    /// input), and the sentences have no tags.
    public static func read(path: String, tokenColumn: Int = 0, tagColumn: Int = -1, scheme: TagScheme = .iob2,
                            labels: [String]?) throws -> [TaggedSentence] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "file not found or unreadable")
        }
        return try parse(data, path: path, tokenColumn: tokenColumn, tagColumn: tagColumn, scheme: scheme, labels: labels)
    }

    /// Parses the bytes of a file; `path` names it in errors.
    public static func parse(_ data: Data, path: String, tokenColumn: Int = 0, tagColumn: Int = -1, scheme: TagScheme = .iob2,
                             labels: [String]?) throws -> [TaggedSentence] {
        let known = Set(labels ?? [])
        var sentences: [TaggedSentence] = []
        var current: TaggedSentence? = nil
        var lineNumbers: [Int] = []
        func close() throws {
            guard var sentence = current else { return }
            if scheme == .iob1 { sentence.tags = iob2(fromIOB1: sentence.tags) }
            for (tag, line) in zip(sentence.tags, lineNumbers) where !known.contains(tag) {
                throw DataError(file: path, line: line, "unknown tag '\(tag)'; expected one of \(labels!.joined(separator: ", "))")
            }
            sentences.append(sentence)
            current = nil
            lineNumbers = []
        }
        // Split bytes, not Characters: "\r\n" is one Character in Swift and would not split at "\n".
        for (index, bytes) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard let line = String(validating: bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes, as: UTF8.self) else {
                throw DataError(file: path, line: index + 1, "not valid UTF-8")
            }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty { try close(); continue }
            if fields[0] == "-DOCSTART-" { try close(); continue }
            let tokenIndex = tokenColumn >= 0 ? tokenColumn : fields.count + tokenColumn
            let tagIndex = labels == nil ? tokenIndex : tagColumn >= 0 ? tagColumn : fields.count + tagColumn
            guard fields.indices.contains(tokenIndex), fields.indices.contains(tagIndex) else {
                throw DataError(file: path, line: index + 1,
                                "expected a token in column \(tokenColumn) and a tag in column \(tagColumn), found \(fields.count) columns")
            }
            if current == nil { current = TaggedSentence(words: [], tags: [], line: index + 1) }
            current!.words.append(String(fields[tokenIndex]))
            if labels != nil { current!.tags.append(String(fields[tagIndex])) }
            lineNumbers.append(index + 1)
        }
        try close()
        guard !sentences.isEmpty else { throw DataError(file: path, "has no sentences") }
        return sentences
    }

    /// IOB1 to IOB2: an `I-X` that does not continue an entity of type X starts one, so it becomes `B-X`.
    public static func iob2(fromIOB1 tags: [String]) -> [String] {
        var result = tags
        for i in tags.indices where tags[i].hasPrefix("I-") {
            let type = tags[i].dropFirst(2)
            let previous = i == 0 ? "O" : tags[i - 1]
            if previous == "O" || previous.dropFirst(2) != type { result[i] = "B-" + type }
        }
        return result
    }
}
