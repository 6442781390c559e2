import Foundation

/// What `finetune predict` asks of the plugin whose architecture a fine-tuned model folder names. The options
/// that only some heads read say which; each keeps the default of transformers' pipeline for that head.
public struct PredictionRequest: Sendable {
    /// The model folder (an export, or a run's `best/`), loaded.
    public let model: String
    public let checkpoint: BertCheckpoint
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
    /// Tokens per sequence, special tokens included (nil: 384 for span QA, 128 otherwise); never more than the
    /// model's `max_position_embeddings`.
    public var maxLength: Int?
    /// Tokens that consecutive windows of a long text share (nil: half the window, at most 128, as the
    /// question-answering pipeline's `doc_stride`).
    public var windowOverlap: Int?
    public var batchSize = 32
    public var precision = Precision.float32
    /// Multi-label: the probability at which a label is predicted (nil: the model's own, else 0.5).
    public var threshold: Double?
    /// Token classification: how sub-token scores become word labels.
    public var aggregation = EntityAggregation.first
    /// Span QA: answers listed (default 1); fill-mask: fillers per mask (default 5).
    public var topK: Int?
    /// Span QA: the longest answer, in tokens.
    public var maxAnswerLength = 15
    /// Span QA (SQuAD 2.0-style models): the empty answer competes with the spans, and wins when its score
    /// beats the best span's by more than `nullThreshold`.
    public var allowNoAnswer = false
    public var nullThreshold = 0.0
    /// The processes that share the batches of a file's prediction (`mpirun ... finetune predict`); process 0
    /// writes the results.
    public var processes = ProcessGroup.single

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

    /// The window length: the request's, else `standard`, capped by the model's position embeddings.
    func sequenceLength(standard: Int = 128) -> Int {
        min(maxLength ?? standard, checkpoint.config.maxPositionEmbeddings)
    }

    /// The overlap of consecutive windows of `length` tokens, checked to leave each window new tokens.
    func overlap(length: Int, budget: Int) throws -> Int {
        let overlap = windowOverlap ?? min(length / 2, 128)
        guard overlap >= 0 && overlap < budget else {
            throw UsageError("--window-overlap \(overlap) must be at least 0 and less than the \(budget) text tokens of a window")
        }
        return overlap
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
