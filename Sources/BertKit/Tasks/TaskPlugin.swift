import Foundation

/// The task plugins, by the name a task file gives in its `plugin` field. A new head is one file (a type that
/// conforms to `TaskPlugin`) and one line here.
public enum TaskPlugins {
    public static let all: [any TaskPlugin.Type] = [
        SequenceClassificationTask.self,
        TokenClassificationTask.self,
        SpanQATask.self,
        PreTrainingTask.self,
        MultiLabelClassificationTask.self,
    ]

    /// The plugin a task file names, or an error naming the file and the plugins there are.
    static func named(_ name: String, in plugins: [any TaskPlugin.Type], file: String) throws -> any TaskPlugin.Type {
        for plugin in plugins where plugin.name == name { return plugin }
        throw DataError(file: file, "unknown plugin '\(name)'" + suggestion(name, among: plugins.map { $0.name }))
    }
}

/// A kind of task: the one output layer it adds to the encoder, the data it reads, the metrics it reports,
/// and how its fine-tuned models predict. The conforming type is also the task a run trains: built from a
/// task file, a checkpoint and the run's hyper-parameters (`init(_:)`).
public protocol TaskPlugin: TrainableTask, SendableMetatype {
    /// How a split of its task file is laid out besides `file` (TSV columns, CoNLL columns, a range of articles).
    associatedtype Split: TaskFileSection
    /// Fields of its task files beyond the common ones (say, the tag scheme of CoNLL files).
    associatedtype Settings: TaskFileSection = NoSettings

    /// The name a task file gives in its `plugin` field.
    static var name: String { get }
    /// The Hugging Face architecture of the models it exports, as BERT names it (`BertForSequenceClassification`;
    /// a RoBERTa export is `RobertaForSequenceClassification`, `EncoderFamily.architecture`); `finetune predict`
    /// dispatches on it.
    static var architecture: String { get }
    /// Every metric it can report; a task file chooses its `metrics` and `mainMetric` among them.
    static var metrics: Set<String> { get }
    /// Hyper-parameters that only this kind of task reads (declared in its file).
    static var hyperparameters: [HyperparameterDeclaration] { get }
    /// What its models' predictions let a user set beyond `PredictionOptions.common` (declared in its files).
    static var predictionOptions: [HyperparameterDeclaration] { get }

    /// Checks what this kind of task needs of its file beyond the common fields (say, labels).
    static func validate(_ spec: TaskSpec) throws
    /// Reads the task's data and builds the encoder with this head, loaded from the checkpoint.
    init(_ setup: TaskSetup) throws
    /// Whether it predicts with the model a `config.json` describes (by default: one of its `architecture`).
    static func predicts(_ config: [String: Any]) -> Bool
    /// Runs a fine-tuned model over an input file and writes its predictions.
    static func predict(_ request: PredictionRequest) throws -> PredictionReport
    /// A metric of stored evaluation predictions (`evaluationPredictions`), for resampling them; nil when the
    /// plugin cannot compute it from them.
    static func score(_ metric: String, _ predictions: ArraySlice<ExamplePrediction>) -> Double?
}

extension TaskPlugin {
    public static var hyperparameters: [HyperparameterDeclaration] { [] }
    public static var predictionOptions: [HyperparameterDeclaration] { [] }
    public static func validate(_ spec: TaskSpec) throws {}
    public static func predicts(_ config: [String: Any]) -> Bool { namesArchitecture(config) }

    /// Whether `config.json` names the plugin's architecture, in any encoder family's spelling.
    public static func namesArchitecture(_ config: [String: Any]) -> Bool {
        !EncoderFamily.architectures(architecture).isDisjoint(with: config["architectures"] as? [String] ?? [])
    }
    public static func score(_ metric: String, _ predictions: ArraySlice<ExamplePrediction>) -> Double? { nil }
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        throw UsageError("\(request.setup.model) is a \(architecture); predict does not run such models yet")
    }

    /// Checks the plugin's own parts of a task file: its extra keys, and every split's layout.
    static func checkTaskFile(_ spec: TaskSpec) throws {
        try JSONKeys.check(spec.contents, file: spec.path, allowed: TaskSpec.commonKeys.union(Settings.keys))
        _ = try spec.settings(as: Settings.self)
        for split in spec.splits.keys { _ = try spec.layout(of: split, as: Split.self) }
        for metric in spec.metrics where !metrics.contains(metric) {
            throw DataError(file: spec.path, "unknown metric '\(metric)' for \(name); known: \(metrics.sorted().joined(separator: ", "))")
        }
        try validate(spec)
    }
}

/// A part of a task file that a plugin defines: the keys it may hold, and how it decodes.
public protocol TaskFileSection: Decodable, Sendable {
    static var keys: Set<String> { get }
}

/// A plugin's task files have no fields beyond the common ones.
public struct NoSettings: TaskFileSection {
    public static var keys: Set<String> { [] }
}

/// Everything a plugin builds its task from.
public struct TaskSetup: Sendable {
    public let spec: TaskSpec
    public let checkpoint: BertCheckpoint
    public let hyperparameters: Hyperparameters
    public let data: DataSources
    /// The processes that train the task together; each evaluates its share of the evaluation batches.
    public let processes: ProcessGroup

    public init(spec: TaskSpec, checkpoint: BertCheckpoint, hyperparameters: Hyperparameters, data: DataSources = DataSources(),
                processes: ProcessGroup = .single) {
        self.spec = spec
        self.checkpoint = checkpoint
        self.hyperparameters = hyperparameters
        self.data = data
        self.processes = processes
    }

    /// The layout and file of a split: `train` and `dev` may come from `--train-file` and `--eval-file`, which
    /// then replace the task's file (`isReplaced`) but keep its layout.
    public func split<Layout: TaskFileSection>(_ name: String, as: Layout.Type) throws -> (layout: Layout, file: String, isReplaced: Bool) {
        let replacement = name == "train" ? data.trainFile : name == "dev" ? data.evalFile : nil
        let layout = try spec.layout(of: name, as: Layout.self)
        return (layout, try replacement ?? spec.file(of: name, dataDirectory: data.dataDirectory), replacement != nil)
    }

    /// The tokenizer of the checkpoint, and a check that `maxLength` fits between `minimum` and the model's
    /// position embeddings.
    public func tokenizer(minimumLength: Int = 3) throws -> Tokenizer {
        let maxLength = hyperparameters[.maxLength], limit = checkpoint.config.maxSequenceLength
        guard maxLength >= minimumLength, maxLength <= limit else {
            // The value may come from the task file, an experiment or the command line: name the setting.
            throw UsageError("max_length \(maxLength) must be between \(minimumLength) and \(limit), the longest sequence the model's "
                + "position embeddings cover (max_position_embeddings in \(checkpoint.directory)/config.json)")
        }
        return try Tokenizer(directory: checkpoint.directory)
    }

    /// Sequences the model's buffers must hold: the larger of the training and evaluation batches.
    public var maxBatch: Int { max(hyperparameters[.batchSize], hyperparameters[.evalBatchSize]) }

    /// What the task's model is built for: its largest batch, of sequences of up to `maxLength` tokens, in the
    /// run's precision; refused when it could not fit in memory.
    public func buildContext(maxLength: Int) throws -> BuildContext {
        let context = BuildContext(maxBatch: maxBatch, maxLength: maxLength, precision: hyperparameters[.precision])
        try context.checkFits(checkpoint.config)
        return context
    }

    /// The loop the task's evaluation runs in: its batches, shared among the run's processes.
    public var evaluationLoop: EvaluationLoop { EvaluationLoop(batchSize: hyperparameters[.evalBatchSize], processes: processes) }
}

/// Where a run's data comes from besides its task file.
public struct DataSources: Sendable {
    /// Files that replace the task's `train` and `dev` splits (same layout).
    public var trainFile: String?
    public var evalFile: String?
    /// Folder holding the data of tasks whose data the repository does not carry (`externalData`).
    public var dataDirectory: String?
    /// Pre-training: a corpus to use instead of the task's files (its last documents are held out).
    public var textFile: String?

    public init(trainFile: String? = nil, evalFile: String? = nil, dataDirectory: String? = nil, textFile: String? = nil) {
        self.trainFile = trainFile
        self.evalFile = evalFile
        self.dataDirectory = dataDirectory
        self.textFile = textFile
    }
}

/// What the runner needs from a task: an encoder with one output layer in one parameter store, and the task's
/// data already turned into features.
public protocol TrainableTask: AnyObject {
    /// Every parameter, encoder and head, in one flat store: the optimizer is one pass over it.
    var parameters: ParameterStore { get }
    /// What loading the checkpoint did (loaded, ignored, newly initialised tensors).
    var loadReport: LoadReport { get }
    /// One line about the data, for the log.
    var dataSummary: String { get }
    /// Problems in the data that were skipped rather than fatal (file, line and what was wrong), for the log.
    var dataWarnings: [DataError] { get }
    /// How many examples the evaluation scores (texts, sentences, questions, pairs), for rates; nil if unknown.
    var evaluationSize: Int? { get }
    /// Token count of each training example, for length-grouped batching.
    var trainingLengths: [Int] { get }
    /// The metric that picks the best checkpoint (higher is better).
    var mainMetric: String { get }
    /// Forward and backward over this process's share of a training batch (all of it when the process trains
    /// alone), computed as `BatchShare` says. Gradients accumulate, scaled by `gradientScale`; returns the
    /// share's part of the batch's mean loss (the shares' parts add up to the mean).
    func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double
    /// The task's metrics on its evaluation split. With several processes (`TaskSetup.processes`), each
    /// computes its share of the evaluation batches and all get the same metrics; it throws when they cannot
    /// communicate.
    func evaluate() throws -> [String: Double]
    /// Writes the model as a Hugging Face folder, atomically.
    func export(to directory: String) throws
    /// After training: metrics on further splits and files written into the run's folder.
    func finish(outputDirectory: String) throws -> FinishReport
    /// What the task itself carries from one step to the next beyond the parameters (pre-training: how many
    /// masks each pair has had), for checkpoints; nil when the steps depend on nothing else.
    var trainingState: Data? { get }
    func restoreTrainingState(_ state: Data) throws
    /// The last evaluation's prediction and gold answer for each evaluation example, in the form the plugin's
    /// `score` reads back (results.db keeps them, for paired comparisons of runs); empty when it has none.
    var evaluationPredictions: [ExamplePrediction] { get }
}

/// One evaluation example's prediction and gold answer, as text (a class index, a value, a tag sequence).
public struct ExamplePrediction: Sendable, Equatable {
    public let predicted: String
    public let gold: String

    public init(predicted: String, gold: String) {
        self.predicted = predicted
        self.gold = gold
    }
}

extension TrainableTask {
    public var evaluationPredictions: [ExamplePrediction] { [] }
    public var evaluationSize: Int? { nil }
    public func finish(outputDirectory: String) throws -> FinishReport { FinishReport() }
    public var dataWarnings: [DataError] { [] }
    public var trainingState: Data? { nil }
    public func restoreTrainingState(_ state: Data) throws {}
}

/// What a task did after training.
public struct FinishReport: Sendable {
    /// Metrics by split (say, `test`).
    public var metrics: [String: [String: Double]] = [:]
    /// Files written, with their kind (say, `predictions`).
    public var files: [(path: String, kind: String)] = []

    public init() {}
}
