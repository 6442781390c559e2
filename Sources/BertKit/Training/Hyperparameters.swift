import Foundation

/// The settings of a run, read and written by their declarations: `h[.learningRate]`, `h[.windowOverlap]`.
/// Defaults follow BERT's fine-tuning recipe (batch 32, length 128, 3 epochs, 10 % linear warm-up then linear
/// decay, AdamW with weight decay 0.01, gradient clipping at 1.0), with a learning rate suited to the small
/// default encoder.
///
/// They come, in this order of precedence, from the defaults, the task file, the experiment and the command
/// line (`applying(_:from:)`, `applying(arguments:)`).
public struct Hyperparameters: Sendable, Equatable {
    /// The text of every hyper-parameter set to something other than its default, by name.
    public private(set) var values: [String: String] = [:]

    public init() {}

    public subscript<Value>(_ key: Hyperparameter<Value>) -> Value {
        get { values[key.name].flatMap(Value.init(text:)) ?? key.defaultValue }
        set {
            let text = newValue.text
            values[key.name] = text == key.defaultValue.text ? nil : text
        }
    }

    /// These with every value that `other` sets (to something other than its default) set the same.
    public func setting(_ other: Hyperparameters) -> Hyperparameters {
        var result = self
        result.values.merge(other.values) { $1 }
        return result
    }

    /// The hyper-parameters that would make a different run if changed: name, these values and `other`'s.
    public func differences(from other: Hyperparameters, plugins: [any TaskPlugin.Type] = TaskPlugins.all) -> [(name: String, this: String, other: String)] {
        Self.table(plugins: plugins).map(\.declaration).filter(\.changesResult).compactMap { d in
            let (a, b) = (text(of: d), other.text(of: d))
            return a == b ? nil : (d.name, a, b)
        }
    }

    /// The text of a hyper-parameter by name (its default when not set), as results.db records it.
    public func text(of declaration: HyperparameterDeclaration) -> String {
        values[declaration.name] ?? declaration.defaultText
    }
}

// MARK: - The hyper-parameters every run reads

extension Hyperparameter where Value == Double {
    public static var learningRate: Self { .init("learning_rate", default: 1e-4, help: "Peak learning rate.", problem: positive) }
    public static var epochs: Self {
        .init("epochs", default: 3, help: "Training epochs (max_steps, when set, replaces them).", problem: { $0 >= 0 ? nil : "must not be negative" })
    }
    public static var warmupRatio: Self {
        .init("warmup_ratio", default: 0.1, help: "Fraction of the optimizer steps spent in linear warm-up.",
              problem: { (0..<1).contains($0) ? nil : "must be in [0, 1)" })
    }
    public static var weightDecay: Self {
        .init("weight_decay", default: 0.01, help: "AdamW weight decay (not on biases and LayerNorm).",
              problem: { $0 >= 0 ? nil : "must not be negative" })
    }
    public static var maxGradNorm: Self {
        .init("max_grad_norm", default: 1, help: "Clip gradients to this global L2 norm.", problem: positive)
    }
    public static var adamBeta1: Self { .init("adam_beta1", default: 0.9, help: "AdamW's β1.", problem: unitInterval) }
    public static var adamBeta2: Self { .init("adam_beta2", default: 0.999, help: "AdamW's β2.", problem: unitInterval) }
    public static var adamEpsilon: Self { .init("adam_epsilon", default: 1e-8, help: "AdamW's ε.", problem: positive) }
    public static var earlyStoppingThreshold: Self {
        .init("early_stopping_threshold", default: 0, help: "How much the main metric must improve to count as an improvement (early stopping).",
              problem: { $0 >= 0 ? nil : "must not be negative" })
    }
}

extension Hyperparameter where Value == Int {
    public static var batchSize: Self { .init("batch_size", default: 32, help: "Sequences per optimizer micro-batch.", problem: positive) }
    public static var maxLength: Self {
        .init("max_length", default: 128, help: "Maximum tokens per sequence (pairs are truncated longest-first).", problem: positive)
    }
    public static var gradientAccumulation: Self {
        .init("gradient_accumulation", default: 1, help: "Micro-batches per optimizer step.", problem: positive)
    }
    public static var saveTotalLimit: Self {
        .init("save_total_limit", default: 1, help: "Keep this many of the newest checkpoints (0: all); the best step's is kept too.",
              changesResult: false, problem: { $0 >= 0 ? nil : "must not be negative" })
    }
    public static var evalBatchSize: Self {
        .init("eval_batch_size", default: 32, help: """
            Sequences per evaluation batch (activation buffers are sized for the larger of the two batch sizes, \
            so a larger evaluation batch costs memory for the whole run).
            """, changesResult: false, problem: positive)
    }
}

extension Hyperparameter where Value == Int? {
    public static var saveSteps: Self {
        .init("save_steps", default: nil, help: "Save a training checkpoint every N optimizer steps (with save_strategy steps).",
              changesResult: false, problem: { $0.map(positive) ?? nil })
    }
    public static var earlyStoppingPatience: Self {
        .init("early_stopping_patience", default: nil, help: """
            Stop after this many evaluations in a row without an improvement of the main metric (default: never).
            """, problem: { $0.map(positive) ?? nil })
    }
    public static var maxSteps: Self {
        .init("max_steps", default: nil, help: "Optimizer steps to train for, instead of epochs.", problem: { $0.map(positive) ?? nil })
    }
    public static var evalSteps: Self {
        .init("eval_steps", default: nil, help: "Evaluate every N optimizer steps (default: at the end of every epoch).",
              problem: { $0.map(positive) ?? nil })
    }
}

extension Hyperparameter where Value == SaveStrategy {
    public static var saveStrategy: Self {
        .init("save_strategy", default: .epoch, help: "When to save training checkpoints (for resume): every epoch, every save_steps, or never.",
              changesResult: false)
    }
}

/// When a run saves training checkpoints.
public enum SaveStrategy: String, Sendable, CaseIterable, HyperparameterValue {
    case epoch, steps, no
}

extension Hyperparameter where Value == UInt64 {
    public static var seed: Self {
        .init("seed", default: 42, help: "Seed of the data order, dropout and the head's initialisation.", placeholder: "integer >= 0")
    }
}

extension Hyperparameter where Value == Precision {
    public static var precision: Self {
        .init("precision", default: .float32, help: """
            Number format of matrix products: fp32, or bf16 (bf16 inputs, fp32 accumulation; fp32 master weights, \
            optimizer state and all other arithmetic).
            """, placeholder: "fp32|bf16", problem: { $0 == .int8 ? "int8 is for prediction only (finetune predict --precision int8)" : nil })
    }
}

extension Hyperparameter where Value == Bool {
    public static var groupByLength: Self {
        .init("group_by_length", default: true, help: "Form batches of similar-length sequences (less padding).")
    }
    public static var keepCheckpoints: Self {
        .init("keep_checkpoints", default: false, help: """
            Keep a completed run's training checkpoints; by default it keeps its best model only (an interrupted or \
            failed run always keeps them, to resume).
            """, changesResult: false)
    }
}

@Sendable func positive<T: Comparable & ExpressibleByIntegerLiteral>(_ value: T) -> String? { value > 0 ? nil : "must be positive" }
@Sendable func unitInterval(_ value: Double) -> String? { (0..<1).contains(value) ? nil : "must be in [0, 1)" }

extension Hyperparameters {
    /// The hyper-parameters every run reads, in the order `--help` lists them.
    public static let common: [HyperparameterDeclaration] = [
        Hyperparameter.learningRate.declaration, Hyperparameter.batchSize.declaration,
        Hyperparameter.maxLength.declaration, Hyperparameter.epochs.declaration, Hyperparameter.maxSteps.declaration,
        Hyperparameter.warmupRatio.declaration, Hyperparameter.weightDecay.declaration,
        Hyperparameter.maxGradNorm.declaration, Hyperparameter.gradientAccumulation.declaration,
        Hyperparameter.adamBeta1.declaration, Hyperparameter.adamBeta2.declaration,
        Hyperparameter.adamEpsilon.declaration, Hyperparameter.seed.declaration, Hyperparameter.precision.declaration,
        Hyperparameter.evalSteps.declaration, Hyperparameter.evalBatchSize.declaration,
        Hyperparameter.groupByLength.declaration, Hyperparameter.earlyStoppingPatience.declaration,
        Hyperparameter.earlyStoppingThreshold.declaration, Hyperparameter.saveStrategy.declaration,
        Hyperparameter.saveSteps.declaration, Hyperparameter.saveTotalLimit.declaration, Hyperparameter.keepCheckpoints.declaration,
    ]

    /// Every declared hyper-parameter, with the plugin that alone reads it (nil: every run reads it).
    public static func table(plugins: [any TaskPlugin.Type] = TaskPlugins.all) -> [(declaration: HyperparameterDeclaration, plugin: String?)] {
        // A hyper-parameter that several plugins read (class weights) is one entry, under the first of them.
        var seen = Set<String>()
        return (common.map { ($0, nil) } + plugins.flatMap { plugin in plugin.hyperparameters.map { ($0, plugin.name) } })
            .filter { seen.insert($0.0.name).inserted }
    }

    /// The hyper-parameters a run of `plugin` reads, and their values as text: the `params` rows of results.db.
    public func parameters(for plugin: any TaskPlugin.Type) -> [(String, String)] {
        (Self.common + plugin.hyperparameters).map { ($0.name, text(of: $0)) }
    }

    /// These hyper-parameters with those a file sets (a task file or an experiment) applied. An unknown name is
    /// an error naming the file and the nearest known name; so is a value of the wrong type or out of range.
    public func applying(_ overrides: [String: JSONValue], from file: String,
                         plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws -> Hyperparameters {
        let table = Self.table(plugins: plugins).map(\.declaration)
        var result = self
        for (name, json) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let declaration = table.first(where: { $0.name == name }) else {
                throw DataError(file: file, "unknown hyper-parameter '\(name)'" + suggestion(name, among: table.map(\.name)))
            }
            guard let (value, problem) = declaration.parseJSON(json) else {
                throw DataError(file: file, "hyper-parameter '\(name)': expected \(declaration.placeholder), found \(json.shown)")
            }
            if let problem { throw DataError(file: file, "hyper-parameter '\(name)' \(problem), found \(json.shown)") }
            result.values[name] = value == declaration.defaultText ? nil : value
        }
        return result
    }

    /// Hyper-parameters as a run recorded them (`values`, by name, as text): in a checkpoint, say.
    public init(recorded values: [String: String], from file: String, plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws {
        let table = Self.table(plugins: plugins).map(\.declaration)
        for (name, text) in values.sorted(by: { $0.key < $1.key }) {
            guard let declaration = table.first(where: { $0.name == name }), let (value, _) = declaration.parseText(text) else {
                throw DataError(file: file, "records hyper-parameter \(name) = '\(text)', which this version does not know")
            }
            self.values[name] = value == declaration.defaultText ? nil : value
        }
    }

    /// These hyper-parameters with command-line options applied: `--learning-rate 5e-5` or `--learning-rate=5e-5`
    /// for every declared hyper-parameter (a true/false one alone means true). An unknown option is an error naming the nearest one among the
    /// hyper-parameters' and `otherOptions`.
    public func applying(arguments: [String], otherOptions: [String] = [],
                         plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws -> Hyperparameters {
        try applying(arguments: arguments, declarations: Self.table(plugins: plugins).map(\.declaration), otherOptions: otherOptions)
    }

    /// The same over any table of declarations (a model's prediction options, say): `--NAME VALUE` for each.
    public func applying(arguments: [String], declarations table: [HyperparameterDeclaration],
                         otherOptions: [String] = []) throws -> Hyperparameters {
        var result = self
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("--") else { throw UsageError("unexpected argument '\(argument)'") }
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            guard let declaration = table.first(where: { $0.flag == parts[0] }) else {
                throw UsageError("unknown option '\(parts[0])'" + suggestion(parts[0], among: table.map(\.flag) + otherOptions))
            }
            // A true/false option given alone (`--whole-word-masking`) means true.
            let bare = parts.count == 1 && declaration.placeholder == Bool.placeholder && rest.first.map { $0.hasPrefix("--") } ?? true
            guard let text = parts.count == 2 ? parts[1] : bare ? "true" : rest.popFirst() else {
                throw UsageError("\(declaration.flag) needs a value (\(declaration.placeholder))")
            }
            guard let (value, problem) = declaration.parseText(text) else {
                throw UsageError("\(declaration.flag) expects \(declaration.placeholder), found '\(text)'")
            }
            if let problem { throw UsageError("\(declaration.flag) \(problem), found '\(text)'") }
            result.values[declaration.name] = value == declaration.defaultText ? nil : value
        }
        return result
    }

    /// Checks what no single hyper-parameter can: every value against its declaration's range, and that the run
    /// has something to do.
    public func validate(plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws {
        for (declaration, _) in Self.table(plugins: plugins) {
            if let value = values[declaration.name], let problem = declaration.parseText(value)?.problem {
                throw UsageError("\(declaration.name) \(problem), found \(value)")
            }
        }
        guard self[.epochs] > 0 || self[.maxSteps] != nil else { throw UsageError("epochs or max_steps must be positive") }
        if self[.saveStrategy] == .steps && self[.saveSteps] == nil { throw UsageError("save_strategy steps needs save_steps") }
    }
}

/// A command line or a setting that cannot be used, said as the user should read it.
public struct UsageError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// A named, versioned set of hyper-parameters: `Experiments/NAME.json`.
public struct Experiment: Sendable {
    public let name: String
    public let version: Int
    public var description: String? = nil
    /// Only the hyper-parameters the experiment sets; the rest keep their defaults (or the task's).
    public let hyperparameters: [String: JSONValue]
    /// The file it was read from, named by errors in its hyper-parameters.
    public let path: String

    private struct File: Decodable {
        let name: String
        let version: Int
        var description: String?
        let hyperparameters: [String: JSONValue]
    }

    public static func load(_ nameOrPath: String, directory: String = "Experiments") throws -> Experiment {
        let path = nameOrPath.hasSuffix(".json") ? nameOrPath : directory + "/" + nameOrPath + ".json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "experiment file not found")
        }
        try JSONKeys.check(data, file: path, allowed: ["name", "version", "description", "hyperparameters"])
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw DataError(file: path, "is not a valid experiment file: \(JSONKeys.explain(error))")
        }
        let experiment = Experiment(name: file.name, version: file.version, description: file.description,
                                    hyperparameters: file.hyperparameters, path: path)
        _ = try Hyperparameters().applying(experiment.hyperparameters, from: path)
        return experiment
    }
}
