import Foundation

/// What `finetune predict` asks of the plugin whose architecture a fine-tuned model folder names.
public struct PredictionRequest: Sendable {
    /// The model folder (an export, or a run's `best/`), loaded.
    public let model: String
    public let checkpoint: BertCheckpoint
    public let input: String
    public let output: String
    /// A task whose split describes the columns of a TSV input.
    public var task: TaskSpec?
    public var split = "test"
    public var maxLength = 128
    public var batchSize = 32
    public var precision = Precision.float32
    /// Multi-label: the probability at which a label is predicted (nil: the model's own, else 0.5).
    public var threshold: Double?

    public init(model: String, input: String, output: String) throws {
        self.model = model
        checkpoint = try BertCheckpoint(directory: model)
        self.input = input
        self.output = output
    }

    /// The plugin that predicts with this model: the one whose architecture its config.json names.
    public func plugin(among plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws -> any TaskPlugin.Type {
        let config = try checkpoint.rawConfig()
        let architectures = config["architectures"] as? [String] ?? []
        for plugin in plugins where plugin.predicts(config) { return plugin }
        throw UsageError("""
            \(model)/config.json names \(architectures.isEmpty ? "no architecture" : architectures.joined(separator: ", ")); \
            predict runs \(plugins.map { $0.architecture }.joined(separator: ", ")) models
            """)
    }
}

/// What a prediction run did.
public struct PredictionReport: Sendable {
    public let examples: Int
    /// Time spent in the model (tokenising and writing excluded).
    public let seconds: Double

    public init(examples: Int, seconds: Double) {
        self.examples = examples
        self.seconds = seconds
    }
}
