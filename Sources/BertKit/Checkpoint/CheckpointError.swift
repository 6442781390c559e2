import Foundation

/// A checkpoint file that cannot be used, with the file and what was expected.
public struct CheckpointError: Error, CustomStringConvertible, LocalizedError {
    public let file: String
    public let problem: String

    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(file): \(problem)" }
    public var errorDescription: String? { description }
}
