import Foundation

/// Input data that cannot be used, naming the file, the line (when there is one) and what was expected.
public struct DataError: Error, CustomStringConvertible, LocalizedError {
    public let file: String
    public let line: Int?
    public let problem: String

    public init(file: String, line: Int? = nil, _ problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    public var description: String { line.map { "\(file):\($0): \(problem)" } ?? "\(file): \(problem)" }
    public var errorDescription: String? { description }
}
