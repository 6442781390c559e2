/// The target of an example: a class index, or a real value for regression.
public enum Target: Sendable, Equatable {
    case label(Int)
    case value(Float)
}

/// A text or text pair with its target (absent for unlabelled test data), and where it came from.
public struct TextExample: Sendable {
    public let textA: String
    public let textB: String?
    public let target: Target?
    public let file: String
    public let line: Int
}
