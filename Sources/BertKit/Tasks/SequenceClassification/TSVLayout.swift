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

    /// The examples of `path`. A line with too few fields, a label not in `labels`, or a value that is not a
    /// number (regression, when `labels` is nil) ends the read with an error naming the file and line.
    public func examples(path: String, labels: [String]?) throws -> [TextExample] {
        let table = try TSVFile(path: path, hasHeader: header)
        let needed = [textA, textB, label].compactMap { $0 }.max()! + 1
        let labelIds = Dictionary(uniqueKeysWithValues: (labels ?? []).enumerated().map { ($1, $0) })
        return try table.rows.map { row in
            guard row.fields.count >= needed else {
                throw DataError(file: path, line: row.line, "expected at least \(needed) tab-separated fields, found \(row.fields.count)")
            }
            var target: Target? = nil
            if let column = label {
                let raw = row.fields[column]
                if let labels {
                    guard let id = labelIds[raw] else {
                        throw DataError(file: path, line: row.line, "unknown label '\(raw)'; expected one of \(labels.joined(separator: ", "))")
                    }
                    target = .label(id)
                } else {
                    guard let value = Float(raw.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                        throw DataError(file: path, line: row.line, "expected a number in column \(column), found '\(raw)'")
                    }
                    target = .value(value)
                }
            }
            return TextExample(textA: row.fields[textA], textB: textB.map { row.fields[$0] }, target: target, file: path, line: row.line)
        }
    }
}
