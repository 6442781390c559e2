import Foundation

/// How a prediction input is laid out.
public enum InputFormat: String, CaseIterable, Sendable {
    /// One text per line.
    case text
    /// One JSON object per line: `text` (and `text_pair`), or `question` and `context`.
    case jsonl
    /// A task split's TSV columns (sequence classification; needs the task).
    case tsv
    /// Pre-split words, one per line (first column), a blank line between sentences (token classification).
    case conll

    /// The format a file's name implies: `.jsonl`, `.tsv`, `.conll`; standard input is JSONL; anything else
    /// holds one text per line.
    public static func implied(by path: String) -> InputFormat {
        if path == "-" { return .jsonl }
        for format in [InputFormat.jsonl, .tsv, .conll] where path.hasSuffix("." + format.rawValue) { return format }
        return .text
    }
}

/// One input of a prediction: a line of text, a JSON object, a TSV row or a CoNLL sentence, with where it came
/// from so that an error can name it.
public struct InputRecord: @unchecked Sendable {
    public let file: String
    public let line: Int
    /// The record's fields: a JSON object's, `text` for a text line, `text` and `text_pair` for a TSV row.
    public let fields: [String: Any]
    /// A CoNLL sentence's words.
    public let words: [String]?

    public init(file: String, line: Int, fields: [String: Any], words: [String]? = nil) {
        self.file = file
        self.line = line
        self.fields = fields
        self.words = words
    }

    /// The first of `keys` that the record has, as a string; an error naming the file and line otherwise.
    public func string(_ keys: String...) throws -> String {
        for key in keys {
            if let value = fields[key] as? String { return value }
            if fields[key] != nil { throw DataError(file: file, line: line, "\"\(key)\" must be a string") }
        }
        throw DataError(file: file, line: line, "expected a \(keys.map { "\"\($0)\"" }.joined(separator: " or ")) string field")
    }

    /// The first of `keys` that the record has, or nil.
    public func optionalString(_ keys: String...) throws -> String? {
        for key in keys where fields[key] != nil { return try string(key) }
        return nil
    }

    /// Parses one line of standard input (or of a file) in `format`.
    static func parse(_ text: String, format: InputFormat, file: String, line: Int) throws -> InputRecord {
        switch format {
        case .text:
            return InputRecord(file: file, line: line, fields: ["text": text])
        case .jsonl:
            guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
                throw DataError(file: file, line: line, "expected a JSON object")
            }
            return InputRecord(file: file, line: line, fields: object)
        case .tsv, .conll:
            preconditionFailure("standard input is read as text or JSONL")
        }
    }
}

extension PredictionRequest {
    /// The input's format, given or implied by its name.
    public var inputFormat: InputFormat { format ?? InputFormat.implied(by: input) }

    /// Every record of the input file. A TSV input takes the columns of the request's task split, as `columns`
    /// reads them; nil means the head reads no TSV.
    func records(tsvColumns columns: ((TaskSpec, String) throws -> TSVLayout)?) throws -> [InputRecord] {
        let records: [InputRecord]
        switch inputFormat {
        case .jsonl:
            records = try JSONLines.read(path: input).map { InputRecord(file: input, line: $0.line, fields: $0.object) }
        case .text:
            guard let data = FileManager.default.contents(atPath: input) else { throw DataError(file: input, "file not found") }
            var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            if lines.last?.isEmpty == true { lines.removeLast() }
            records = try lines.enumerated().map { number, bytes in
                guard let text = String(validating: bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes, as: UTF8.self) else {
                    throw DataError(file: input, line: number + 1, "not valid UTF-8")
                }
                return InputRecord(file: input, line: number + 1, fields: ["text": text])
            }
        case .tsv:
            guard let columns else { throw UsageError("\(setup.model) does not read TSV input; give text lines or JSONL") }
            guard let task else { throw UsageError("a TSV input needs --task to say which columns hold the texts") }
            records = try columns(task, split).rows(path: input).map { row in
                var fields = ["text": row.textA]
                if let pair = row.textB { fields["text_pair"] = pair }
                return InputRecord(file: input, line: row.line, fields: fields)
            }
        case .conll:
            records = try CoNLLFile.read(path: input, labels: nil).map {
                InputRecord(file: input, line: $0.line, fields: [:], words: $0.words)
            }
        }
        guard !records.isEmpty else { throw DataError(file: input, "has no examples") }
        return records
    }
}
