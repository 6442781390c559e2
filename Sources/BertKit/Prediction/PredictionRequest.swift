import Foundation

/// A fine-tuned model folder made ready to predict: what every head's predictor is built from, whether its inputs
/// come from a file (`PredictionRequest`, `finetune predict`) or from a program (`FineTunedModel`).
public struct PredictionSetup: Sendable {
    /// The model folder (an export, or a run's `best/`), loaded.
    public let model: String
    public let checkpoint: BertCheckpoint
    /// What the user set: `PredictionOptions.common` and the options of the model's plugin
    /// (`PredictionOptions.parse`); an option not set has its declared default.
    public var options = Hyperparameters()
    /// The processes that share the batches of a file's prediction (`mpirun ... finetune predict`); process 0
    /// writes the results.
    public var processes = ProcessGroup.single

    public init(model: String, options: Hyperparameters = Hyperparameters()) throws {
        self.model = model
        checkpoint = try BertCheckpoint(directory: model)
        self.options = options
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

    /// Sequences per forward pass.
    var batchSize: Int { options[PredictionOptions.batchSize] }
    var precision: Precision { options[PredictionOptions.precision] }

    /// What the predicting model is built for: a batch of sequences of up to `maxLength` tokens, in the
    /// setup's precision.
    func buildContext(maxLength: Int) throws -> BuildContext {
        let context = BuildContext(maxBatch: batchSize, maxLength: maxLength, precision: precision)
        try context.checkFits(checkpoint.config)
        return context
    }

    /// The window length: the options', else `standard`, else the model's own limit (as transformers'
    /// pipelines default), capped by the model's position embeddings.
    func sequenceLength(standard: Int? = nil) -> Int {
        min(options[PredictionOptions.maxLength] ?? standard ?? checkpoint.modelMaxLength, checkpoint.config.maxSequenceLength)
    }

    /// The overlap of consecutive windows of `length` tokens, checked to leave each window new tokens.
    func overlap(length: Int, budget: Int) throws -> Int {
        let overlap = options[PredictionOptions.windowOverlap] ?? min(length / 2, 128)
        guard overlap >= 0 && overlap < budget else {
            throw UsageError("--window-overlap \(overlap) must be at least 0 and less than the \(budget) text tokens of a window")
        }
        return overlap
    }

    /// The label names of a fine-tuned classification model, or an error naming its config.json.
    func labels(of kind: String) throws -> [String] {
        guard let labels = try checkpoint.labelNames(), !labels.isEmpty else {
            throw DataError(file: model + "/config.json", "has no id2label: is this a fine-tuned \(kind) model?")
        }
        return labels
    }
}

/// What `finetune predict` asks of the plugin whose architecture a fine-tuned model folder names: the model and
/// its options, the input and the output.
public struct PredictionRequest: Sendable {
    public var setup: PredictionSetup
    /// The input file, or `-` for standard input read line by line (each result written and flushed as soon
    /// as it is ready).
    public let input: String
    /// The output file (written under a temporary name, then renamed), or `-` for standard output.
    public let output: String
    /// How the input is laid out; nil: from its name (`.jsonl`, `.tsv`, `.conll`; `-` is JSONL; else text lines).
    public var format: InputFormat?
    /// A task whose split describes the columns of a TSV input.
    public var task: TaskSpec?
    public var split = "test"

    public init(model: String, input: String, output: String) throws {
        if input != "-" && output != "-" && Self.sameFile(input, output) {
            throw UsageError("--output \(output) is the input file \(input): the predictions would replace it; name another output")
        }
        setup = try PredictionSetup(model: model)
        self.input = input
        self.output = output
    }

    /// Whether two paths name one file (through links too): both exist, with the same device and inode.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var x = stat(), y = stat()
        guard stat(a, &x) == 0, stat(b, &y) == 0 else { return false }
        return x.st_dev == y.st_dev && x.st_ino == y.st_ino
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
