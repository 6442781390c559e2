/// What the runner needs from a task plugin: an encoder with one output layer in one parameter store, and
/// the task's data already turned into features.
public protocol TrainableTask: AnyObject {
    /// Every parameter, encoder and head, in one flat store: the optimizer is one pass over it.
    var parameters: ParameterStore { get }
    /// What loading the checkpoint did (loaded, ignored, newly initialised tensors).
    var loadReport: LoadReport { get }
    /// One line about the data, for the log.
    var dataSummary: String { get }
    /// Problems in the data that were skipped rather than fatal (file, line and what was wrong), for the log.
    var dataWarnings: [DataError] { get }
    /// Token count of each training example, for length-grouped batching.
    var trainingLengths: [Int] { get }
    /// The metric that picks the best checkpoint (higher is better).
    var mainMetric: String { get }
    /// Forward and backward over some training examples. Gradients accumulate, scaled by `gradientScale`;
    /// returns the batch's mean loss.
    func trainStep(_ examples: ArraySlice<Int>, dropout: DropoutMode, gradientScale: Float) -> Double
    /// The task's metrics on its evaluation split.
    func evaluate() -> [String: Double]
    /// Writes the model as a Hugging Face folder, atomically.
    func export(to directory: String) throws
    /// After training: metrics on further splits and files written into the run's folder.
    func finish(outputDirectory: String) throws -> FinishReport
}

/// What a task did after training.
public struct FinishReport: Sendable {
    /// Metrics by split (say, `test`).
    public var metrics: [String: [String: Double]] = [:]
    /// Files written, with their kind (say, `predictions`).
    public var files: [(path: String, kind: String)] = []

    public init() {}
}

extension TrainableTask {
    public func finish(outputDirectory: String) throws -> FinishReport { FinishReport() }
    public var dataWarnings: [DataError] { [] }
}

/// Settings that shape a task's features and model.
public struct TaskOptions: Sendable {
    public var maxLength = 128
    public var batchSize = 32
    public var evaluationBatchSize = 32
    public var seed: UInt64 = 42
    /// Number format of the matrix products' inputs (see `BertEncoder`).
    public var precision = Precision.float32
    public var trainFile: String? = nil
    public var evalFile: String? = nil
    /// Folder holding the data of tasks whose data the repository does not carry.
    public var dataDirectory: String? = nil
    /// Token classification: label every sub-token, not only a word's first.
    public var labelAllSubtokens = false
    /// Span QA: context tokens shared by consecutive windows.
    public var windowOverlap = 128
    /// Pre-training: a corpus to use instead of the task's files (its last documents are held out).
    public var textFile: String? = nil
    public var preTraining = PreTrainingOptions()

    public init() {}
}

/// How pre-training examples are made: the masking and packing settings of `Hyperparameters`.
public struct PreTrainingOptions: Sendable {
    public var mlmProbability = 0.15
    public var maxPredictions = 20
    public var shortSequenceProbability = 0.1
    public var nextSentencePrediction = true
    public var wholeWordMasking = false
    public var dynamicMasking = true

    public init() {}

    public init(_ h: Hyperparameters) {
        mlmProbability = h.mlmProbability
        maxPredictions = h.maxPredictions
        shortSequenceProbability = h.shortSequenceProbability
        nextSentencePrediction = h.nextSentencePrediction
        wholeWordMasking = h.wholeWordMasking
        dynamicMasking = h.dynamicMasking
    }
}

/// The task plugins, by the name a task file gives in its `plugin` field.
public enum TaskPlugins {
    public static func make(_ spec: TaskSpec, checkpoint: BertCheckpoint, options o: TaskOptions) throws -> TrainableTask {
        switch spec.plugin {
        case "sequence-classification":
            return try SequenceClassificationTask(spec: spec, checkpoint: checkpoint, maxLength: o.maxLength, batchSize: o.batchSize,
                                                  evaluationBatchSize: o.evaluationBatchSize, seed: o.seed,
                                                  precision: o.precision, trainFile: o.trainFile, evalFile: o.evalFile)
        case "token-classification":
            return try TokenClassificationTask(spec: spec, checkpoint: checkpoint, dataDirectory: o.dataDirectory,
                                               maxLength: o.maxLength, batchSize: o.batchSize,
                                               evaluationBatchSize: o.evaluationBatchSize, seed: o.seed,
                                               precision: o.precision, labelAllSubtokens: o.labelAllSubtokens, trainFile: o.trainFile, evalFile: o.evalFile)
        case "span-qa":
            return try SpanQATask(spec: spec, checkpoint: checkpoint, maxLength: o.maxLength, windowOverlap: o.windowOverlap,
                                  batchSize: o.batchSize, evaluationBatchSize: o.evaluationBatchSize, seed: o.seed,
                                  precision: o.precision, trainFile: o.trainFile, evalFile: o.evalFile)
        case "pretraining":
            return try PreTrainingTask(spec: spec, checkpoint: checkpoint, options: o)
        default:
            throw DataError(file: spec.path, "unknown plugin '\(spec.plugin)'")
        }
    }
}
