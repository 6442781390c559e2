import Foundation

/// A tokenised text or text pair and its target.
public struct SequenceFeature: Sendable {
    public let ids: [Int32]
    public let typeIds: [Int32]
    public let target: Target?
}

/// The sequence classification (and regression) plugin: GLUE-style tasks read from a `TaskSpec`, trained
/// with a `SequenceClassifier` on the `train` split and evaluated on `dev`.
public final class SequenceClassificationTask: TrainableTask {
    public let spec: TaskSpec
    public let checkpoint: BertCheckpoint
    public let tokenizer: BertTokenizer
    public let model: SequenceClassifier
    public let loadReport: LoadReport
    public let training: [SequenceFeature]
    public let evaluation: [SequenceFeature]
    public let evaluationBatchSize: Int

    public var parameters: ParameterStore { model.parameters }
    public var mainMetric: String { spec.mainMetric }
    public var dataSummary: String { "\(training.count) training and \(evaluation.count) evaluation examples" }
    public var trainingLengths: [Int] { training.map(\.ids.count) }

    /// Tokenises the task's `train` and `dev` splits (truncated to `maxLength` tokens) and loads the encoder,
    /// initialising the classifier with `seed`.
    public init(spec: TaskSpec, checkpoint: BertCheckpoint, maxLength: Int, batchSize: Int, evaluationBatchSize: Int = 32,
                seed: UInt64, precision: Precision = .float32, trainFile: String? = nil, evalFile: String? = nil) throws {
        self.spec = spec
        self.checkpoint = checkpoint
        tokenizer = try BertTokenizer(directory: checkpoint.directory)
        guard maxLength >= 3, maxLength <= checkpoint.config.maxPositionEmbeddings else {
            throw DataError(file: spec.path, "max length \(maxLength) must be between 3 and the model's \(checkpoint.config.maxPositionEmbeddings)")
        }
        let trainExamples = try spec.examples("train", file: trainFile)
        let evalExamples = try spec.examples("dev", file: evalFile)
        for (split, examples) in [("train", trainExamples), ("dev", evalExamples)] {
            if let unlabelled = examples.first(where: { $0.target == nil }) {
                throw DataError(file: unlabelled.file, line: unlabelled.line, "the \(split) split needs a label column")
            }
        }
        let tokenizer = self.tokenizer
        func featurize(_ examples: [TextExample]) -> [SequenceFeature] {
            examples.map { e in
                let encoding = tokenizer.encode(e.textA, pair: e.textB, maxLength: maxLength)
                return SequenceFeature(ids: encoding.ids, typeIds: encoding.typeIds, target: e.target)
            }
        }
        training = featurize(trainExamples)
        evaluation = featurize(evalExamples)
        self.evaluationBatchSize = evaluationBatchSize
        let longest = max(training.map(\.ids.count).max() ?? 0, evaluation.map(\.ids.count).max() ?? 0)
        model = SequenceClassifier(config: checkpoint.config, outputs: spec.labels?.count ?? 1,
                                   maxBatch: max(batchSize, evaluationBatchSize), maxLength: longest, precision: precision)
        loadReport = try checkpoint.loadWeights(into: model.parameters, mayBeNew: SequenceClassifier.isHeadParameter, seed: seed)
    }

    public func trainStep(_ examples: ArraySlice<Int>, dropout: DropoutMode, gradientScale: Float) -> Double {
        let batch = Self.batch(training, examples, padId: tokenizer.padId)
        model.forward(batch, dropout: dropout)
        let loss = model.loss(examples.map { training[$0].target! }, scale: gradientScale)
        model.backward()
        return loss
    }

    public func evaluate() -> [String: Double] {
        let (predicted, gold) = predict(evaluation)
        return Metrics.compute(spec.metrics, predicted: predicted, gold: gold.map { $0! })
    }

    /// Predictions for `features` in their order, and their targets. Batches are formed from sequences of
    /// similar length, which wastes less work on padding.
    public func predict(_ features: [SequenceFeature]) -> (predicted: [Target], gold: [Target?]) {
        var predicted = [Target?](repeating: nil, count: features.count)
        let order = features.indices.sorted { features[$0].ids.count < features[$1].ids.count }
        for start in stride(from: 0, to: order.count, by: evaluationBatchSize) {
            let indices = order[start..<min(start + evaluationBatchSize, order.count)]
            model.forward(Self.batch(features, indices, padId: tokenizer.padId))
            for (i, p) in zip(indices, model.predictions()) { predicted[i] = p }
        }
        return (predicted.map { $0! }, features.map(\.target))
    }

    public func export(to directory: String) throws {
        try HuggingFaceExport.write(to: directory, baseModel: checkpoint, tokenizer: tokenizer,
                                    parameters: model.parameters, head: Self.exportHead(labels: spec.labels))
    }

    static func exportHead(labels: [String]?) -> HuggingFaceExport.Head {
        var config: [String: Any] = [:]
        if let labels {
            config["id2label"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0), $1) })
            config["label2id"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
            config["problem_type"] = "single_label_classification"
        } else {
            config["id2label"] = ["0": "LABEL_0"]
            config["label2id"] = ["LABEL_0": 0]
            config["problem_type"] = "regression"
        }
        return .init(architecture: "BertForSequenceClassification", config: config,
                     isHeadParameter: SequenceClassifier.isHeadParameter)
    }

    /// The chosen features, padded on the right to the longest of them.
    static func batch(_ features: [SequenceFeature], _ indices: ArraySlice<Int>, padId: Int32) -> EncoderBatch {
        EncoderBatch(padding: indices.map { features[$0].ids }, typeIds: indices.map { features[$0].typeIds }, padId: padId)
    }
}
