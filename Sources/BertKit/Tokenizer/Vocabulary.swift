import Foundation

/// A WordPiece vocabulary: `vocab.txt`, one token per line, the line number being the id.
///
/// Tokens are compared as exact sequences of Unicode scalars. Swift's `String` equality would treat a
/// decomposed "e + U+0301" as equal to a precomposed "é", which the reference tokenizer does not.
public struct Vocabulary: Sendable {
    public let tokens: [String]
    private let ids: [[Unicode.Scalar]: Int32]
    /// Length in Unicode scalars of the longest token, which bounds WordPiece's longest-match search.
    let longestToken: Int

    public init(tokens: [String]) {
        self.tokens = tokens
        var ids: [[Unicode.Scalar]: Int32] = [:]
        for (i, token) in tokens.enumerated() {
            let key = Array(token.unicodeScalars)
            if ids[key] == nil { ids[key] = Int32(i) }
        }
        self.ids = ids
        longestToken = ids.keys.map(\.count).max() ?? 0
    }

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError(file: path, "file not found or unreadable")
        }
        try self.init(data: data, path: path)
    }

    /// Parses the bytes of a `vocab.txt`; `path` names it in errors.
    public init(data: Data, path: String) throws {
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        if lines.last?.isEmpty == true { lines.removeLast() }
        var tokens: [String] = []
        for (number, line) in lines.enumerated() {
            guard let token = String(validating: line, as: UTF8.self) else {
                throw CheckpointError(file: path, "line \(number + 1) is not valid UTF-8")
            }
            tokens.append(token)
        }
        guard !tokens.isEmpty else { throw CheckpointError(file: path, "is empty; expected one WordPiece token per line") }
        // A repeated token would have two ids, and tokenizers disagree on which one wins.
        var seen: [[Unicode.Scalar]: Int] = [:]
        for (number, token) in tokens.enumerated() {
            if let first = seen.updateValue(number, forKey: Array(token.unicodeScalars)) {
                throw CheckpointError(file: path, "line \(number + 1) repeats the token '\(token)' of line \(first + 1)")
            }
        }
        self.init(tokens: tokens)
    }

    public var count: Int { tokens.count }

    public func id(_ token: String) -> Int32? { ids[Array(token.unicodeScalars)] }

    func id(scalars: [Unicode.Scalar]) -> Int32? { ids[scalars] }

    public func token(_ id: Int32) -> String { tokens[Int(id)] }
}
