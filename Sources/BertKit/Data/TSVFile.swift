import Foundation

/// A tab-separated file read as it is: fields are split on tabs only (GLUE's fields contain unbalanced
/// quotes, so there is no quoting), a UTF-8 byte order mark is skipped, `\r\n` line ends are accepted, and a
/// missing final newline is fine.
public struct TSVFile: Sendable {
    public struct Row: Sendable {
        /// 1-based line number in the file.
        public let line: Int
        public let fields: [String]
    }

    public let path: String
    public let header: [String]?
    public let rows: [Row]

    public init(path: String, hasHeader: Bool) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "file not found or unreadable")
        }
        try self.init(data: data, path: path, hasHeader: hasHeader)
    }

    /// Parses the bytes of a file; `path` names it in errors.
    public init(data: Data, path: String, hasHeader: Bool) throws {
        var bytes = data[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var header: [String]? = nil
        var rows: [Row] = []
        rows.reserveCapacity(lines.count)
        for (index, raw) in lines.enumerated() {
            let line = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw
            guard let text = String(validating: line, as: UTF8.self) else {
                throw DataError(file: path, line: index + 1, "not valid UTF-8")
            }
            let fields = text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            if hasHeader && index == 0 {
                header = fields
            } else {
                rows.append(Row(line: index + 1, fields: fields))
            }
        }
        if hasHeader && header == nil { throw DataError(file: path, "is empty; expected a header line") }
        guard !rows.isEmpty else { throw DataError(file: path, "has no examples") }
        self.path = path
        self.header = header
        self.rows = rows
    }
}
