import Foundation

/// A file of one JSON object per line (blank lines skipped), each with its 1-based line number.
public enum JSONLines {
    public static func read(path: String) throws -> [(line: Int, object: [String: Any])] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, "file not found") }
        var objects: [(line: Int, object: [String: Any])] = []
        for (number, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                throw DataError(file: path, line: number + 1, "expected a JSON object")
            }
            objects.append((number + 1, object))
        }
        guard !objects.isEmpty else { throw DataError(file: path, "has no examples") }
        return objects
    }
}
