import Foundation

/// How a split of a sequence classification task is laid out: a TSV file as GLUE ships it, with the columns of
/// text A, text B and the label, counted from 0.
public struct TSVLayout: TaskFileSection {
    /// Whether the first line is a header.
    public var header = true
    public var textA: Int
    public var textB: Int?
    /// Absent for unlabelled data (a test split).
    public var label: Int?

    public static var keys: Set<String> { ["header", "textA", "textB", "label"] }

    enum CodingKeys: String, CodingKey { case header, textA, textB, label }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        header = try c.decodeIfPresent(Bool.self, forKey: .header) ?? true
        textA = try c.decode(Int.self, forKey: .textA)
        textB = try c.decodeIfPresent(Int.self, forKey: .textB)
        label = try c.decodeIfPresent(Int.self, forKey: .label)
        if let negative = [textA, textB, label].compactMap({ $0 }).first(where: { $0 < 0 }) {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "column \(negative): columns count from 0"))
        }
    }

    /// One line of the file: its texts and its label column as written (nil without a label column).
    public struct Row {
        public let textA: String
        public let textB: String?
        public let label: String?
        public let file: String
        public let line: Int
    }

    /// The rows of `path`; a line with too few fields is an error naming the file and line.
    public func rows(path: String) throws -> [Row] {
        let table = try TSVFile(path: path, hasHeader: header)
        let needed = [textA, textB, label].compactMap { $0 }.max()! + 1
        return try table.rows.map { row in
            guard row.fields.count >= needed else {
                throw DataError(file: path, line: row.line, "expected at least \(needed) tab-separated fields, found \(row.fields.count)")
            }
            return Row(textA: row.fields[textA], textB: textB.map { row.fields[$0] }, label: label.map { row.fields[$0] },
                       file: path, line: row.line)
        }
    }

    /// The examples of `path`. A label not in `labels`, or a value that is not a number (regression, when
    /// `labels` is nil), is an error naming the file and line.
    public func examples(path: String, labels: [String]?) throws -> [TextExample] {
        let labelIds = Dictionary(uniqueKeysWithValues: (labels ?? []).enumerated().map { ($1, $0) })
        return try rows(path: path).map { row in
            var target: Target? = nil
            if let raw = row.label {
                if let labels {
                    guard let id = labelIds[raw] else {
                        throw DataError(file: path, line: row.line, "unknown label '\(raw)'; expected one of \(labels.joined(separator: ", "))")
                    }
                    target = .label(id)
                } else {
                    guard let value = Float(raw.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                        throw DataError(file: path, line: row.line, "expected a number in column \(label!), found '\(raw)'")
                    }
                    target = .value(value)
                }
            }
            return TextExample(textA: row.textA, textB: row.textB, target: target, file: path, line: row.line)
        }
    }
}
