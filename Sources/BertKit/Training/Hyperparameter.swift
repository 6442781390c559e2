import Foundation

/// One hyper-parameter, declared once: its name (`learning_rate`) is the key in task files, experiments and
/// results.db's `params`, a column of the `run_params` view, and, as `--learning-rate`, a command-line option.
/// Every plugin's hyper-parameters are read and written through it: `hyperparameters[.learningRate]`.
///
/// The ones every run reads are declared in `Hyperparameters.swift`; one that only a plugin reads is declared
/// in the plugin's file and listed in its `hyperparameters`.
public struct Hyperparameter<Value: HyperparameterValue>: Sendable {
    public let name: String
    public let defaultValue: Value
    public let help: String
    /// Whether a different value can give different weights. One that cannot (the evaluation batch, how often
    /// checkpoints are saved) may change when a run is resumed.
    public let changesResult: Bool
    /// What a value looks like in help (`fp32|bf16`): the type's, unless the range narrows it.
    public let placeholder: String
    /// What is wrong with a value, or nil when it is fine.
    let problem: @Sendable (Value) -> String?

    public init(_ name: String, default defaultValue: Value, help: String, changesResult: Bool = true, placeholder: String? = nil,
                problem: @escaping @Sendable (Value) -> String? = { _ in nil }) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
        self.changesResult = changesResult
        self.placeholder = placeholder ?? Value.placeholder
        self.problem = problem
    }

    /// This hyper-parameter without its type, for the table that drives options, files and results.db.
    public var declaration: HyperparameterDeclaration {
        let problem = self.problem
        return HyperparameterDeclaration(
            name: name, help: help, placeholder: placeholder, defaultText: defaultValue.text,
            sqlType: Value.sqlType, changesResult: changesResult,
            parseText: { text in Value(text: text).map { (value: $0.text, problem: problem($0)) } },
            parseJSON: { json in Value(json: json).map { (value: $0.text, problem: problem($0)) } })
    }
}

/// A hyper-parameter's name, help and type without the type: one row of the table that drives the command
/// line, the decoding of task and experiment files, the `params` rows and the `run_params` columns.
public struct HyperparameterDeclaration: Sendable {
    public let name: String
    public let help: String
    /// What a value looks like, for help and errors: `number`, `integer`, `true|false`, `fp32|bf16`.
    public let placeholder: String
    public let defaultText: String
    /// The column type in `run_params`: REAL, INTEGER or TEXT.
    public let sqlType: String
    public let changesResult: Bool
    /// A value's canonical text and what is wrong with it, or nil when it is not of this type.
    package let parseText: @Sendable (String) -> (value: String, problem: String?)?
    let parseJSON: @Sendable (JSONValue) -> (value: String, problem: String?)?

    /// The command-line option: `learning_rate` is `--learning-rate`.
    public var flag: String { "--" + name.replacingOccurrences(of: "_", with: "-") }
}

/// A type a hyper-parameter can have. Values are kept and recorded as text, the form results.db stores, so a
/// run's settings read back exactly.
public protocol HyperparameterValue: Sendable, Equatable {
    /// Reads the text form: a command-line argument or a recorded value.
    init?(text: String)
    /// Reads a value of a task or experiment file.
    init?(json: JSONValue)
    /// The text form: whole numbers without a fraction, booleans as true and false.
    var text: String { get }
    static var placeholder: String { get }
    static var sqlType: String { get }
}

extension Double: HyperparameterValue {
    public init?(text: String) {
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else { return nil }
        self = value
    }
    public init?(json: JSONValue) {
        switch json {
        case .number(let d): self = d
        case .integer(let i): self = Double(i)
        default: return nil
        }
    }
    public var text: String { self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : "\(self)" }
    public static var placeholder: String { "number" }
    public static var sqlType: String { "REAL" }
}

/// Whole numbers (`Int`, and `UInt64` for seeds, which may be larger than a JSON number holds exactly when
/// written as text).
extension HyperparameterValue where Self: FixedWidthInteger {
    public init?(text: String) {
        guard let value = Self(text.trimmingCharacters(in: .whitespaces)) else { return nil }
        self = value
    }
    public init?(json: JSONValue) {
        switch json {
        case .integer(let i): guard let value = Self(exactly: i) else { return nil }; self = value
        case .number(let d) where d == d.rounded() && abs(d) < 9e15: guard let value = Self(exactly: d) else { return nil }; self = value
        default: return nil
        }
    }
    public var text: String { String(self) }
    public static var placeholder: String { "integer" }
    public static var sqlType: String { "INTEGER" }
}

extension Int: HyperparameterValue {}
extension UInt64: HyperparameterValue {}

extension Bool: HyperparameterValue {
    public init?(text: String) {
        switch text.lowercased() {
        case "true": self = true
        case "false": self = false
        default: return nil
        }
    }
    public init?(json: JSONValue) {
        guard case .bool(let b) = json else { return nil }
        self = b
    }
    public var text: String { self ? "true" : "false" }
    public static var placeholder: String { "true|false" }
    public static var sqlType: String { "TEXT" }
}

/// A choice among names (`fp32|bf16`): an enumeration whose raw values are the names.
extension HyperparameterValue where Self: RawRepresentable & CaseIterable, RawValue == String {
    public init?(text: String) { self.init(rawValue: text) }
    public init?(json: JSONValue) {
        guard case .text(let name) = json else { return nil }
        self.init(rawValue: name)
    }
    public var text: String { rawValue }
    public static var placeholder: String { allCases.map(\.rawValue).joined(separator: "|") }
    public static var sqlType: String { "TEXT" }
}

extension Precision: HyperparameterValue {}

/// An optional setting: absent (the empty text, or JSON null) means "not set".
extension Optional: HyperparameterValue where Wrapped: HyperparameterValue {
    public init?(text: String) {
        if text.isEmpty { self = .none; return }
        guard let value = Wrapped(text: text) else { return nil }
        self = .some(value)
    }
    public init?(json: JSONValue) {
        if json == .null { self = .none; return }
        guard let value = Wrapped(json: json) else { return nil }
        self = .some(value)
    }
    public var text: String { map(\.text) ?? "" }
    public static var placeholder: String { Wrapped.placeholder }
    public static var sqlType: String { Wrapped.sqlType }
}

/// A value in a JSON file (a task file, an experiment): what a hyper-parameter or a split's field is read from.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case text(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let t = try? c.decode(String.self) { self = .text(t) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .integer(let i): try c.encode(i)
        case .number(let d): try c.encode(d)
        case .text(let t): try c.encode(t)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// As a person would write it, for error messages.
    public var shown: String {
        switch self {
        case .text(let t): "\"\(t)\""
        case .null: "null"
        default: (try? String(decoding: JSONEncoder().encode(self), as: UTF8.self)) ?? "?"
        }
    }
}

/// JSON written as Swift literals, for a task or hyper-parameters described in code (`TaskSpec(_:directory:)`):
/// `["file": "train.tsv", "textA": 3, "label": 0]`.
extension JSONValue: ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}
