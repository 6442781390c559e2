import Foundation

/// Task and experiment files are read strictly: a key the toolkit does not know is a typo that would otherwise
/// be ignored (a misspelt `labels` silently turns a task into regression), so it is an error naming the file,
/// the key and the nearest known key.
enum JSONKeys {
    /// Checks the keys of the file's top-level object against `allowed`.
    static func check(_ data: Data, file: String, allowed: Set<String>) throws {
        guard let object = try? JSONSerialization.jsonObject(with: data) else {
            throw DataError(file: file, "is not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else { throw DataError(file: file, "expected a JSON object") }
        try check(Set(dictionary.keys), file: file, allowed: allowed, context: "")
    }

    /// Checks `keys` against `allowed`; `context` says where they are (say, "split 'train': ").
    static func check(_ keys: Set<String>, file: String, allowed: Set<String>, context: String) throws {
        for key in keys.sorted() where !allowed.contains(key) {
            throw DataError(file: file, "\(context)unknown key '\(key)'" + suggestion(key, among: allowed.sorted()))
        }
    }

    /// A decoding error as a person reads it: which key, and what was wrong.
    static func explain(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String { keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case DecodingError.keyNotFound(let key, let context): return "missing key '\(path(context.codingPath + [key]))'"
        case DecodingError.typeMismatch(let type, let context): return "'\(path(context.codingPath))' should be \(describe(type))"
        case DecodingError.valueNotFound(let type, let context): return "'\(path(context.codingPath))' should be \(describe(type))"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "'\(path(context.codingPath))': \(context.debugDescription)"
        default: return "\(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type: "a whole number"
        case is Double.Type: "a number"
        case is [Any].Type: "a list"
        default: "a \(type)"
        }
    }
}

/// "; did you mean 'x'?" when a known name is close to `name`, else the known names.
func suggestion(_ name: String, among known: [String]) -> String {
    let scored = known.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }.min { $0.1 < $1.1 }
    if let (best, distance) = scored, distance <= max(2, name.count / 3) { return "; did you mean '\(best)'?" }
    return known.isEmpty ? "" : "; known: \(known.joined(separator: ", "))"
}

/// Levenshtein distance: insertions, deletions and substitutions of characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(1, b.count) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}
