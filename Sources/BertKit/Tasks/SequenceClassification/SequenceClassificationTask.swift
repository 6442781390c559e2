import Foundation

/// A tokenised text or text pair and its target.
public struct SequenceFeature: Sendable {
    public let ids: [Int32]
    public let typeIds: [Int32]
    public let target: Target?
}

/// The sequence classification (and regression) plugin: GLUE-style tasks whose splits are TSV files, trained
/// with a `SequenceClassifier` on the `train` split and evaluated on `dev`.
public final class SequenceClassificationTask: TaskPlugin {
    public typealias Split = TSVLayout
    public static let name = "sequence-classification"
    public static let architecture = "BertForSequenceClassification"
    public static let metrics = Metrics.known
    public static var hyperparameters: [HyperparameterDeclaration] { [Hyperparameter.classWeights.declaration] }

    /// Its own models: one label per text, or a value (not, say, multi-label ones of the same architecture).
    public static func predicts(_ config: [String: Any]) -> Bool {
        namesArchitecture(config)
            && ["single_label_classification", "regression", nil].contains(config["problem_type"] as? String)
    }

    /// Classes are scored by accuracy, F1 and Matthews' correlation, values (regression) by correlations.
    public static func validate(_ spec: TaskSpec) throws {
        let fitting: Set<String> = spec.isRegression ? ["pearson", "spearman"] : ["accuracy", "f1", "matthews"]
        if let metric = spec.metrics.first(where: { !fitting.contains($0) }) {
            throw DataError(file: spec.path, "metric '\(metric)' does not fit a \(spec.isRegression ? "regression task (no labels)" : "classification task"); use \(fitting.sorted().joined(separator: ", "))")
        }
    }

    public let spec: TaskSpec
    public let checkpoint: BertCheckpoint
    public let tokenizer: Tokenizer
    public let model: SequenceClassifier
    public let loadReport: LoadReport
    public let training: [SequenceFeature]
    public let evaluation: [SequenceFeature]
    /// The loop its evaluation runs in: the evaluation batch, shared among the run's processes.
    public let evaluationLoop: EvaluationLoop
    /// Each class's weight in the loss, when `class_weights` sets them.
    public let classWeights: [Float]?

    public var parameters: ParameterStore { model.parameters }
    public var mainMetric: String { spec.mainMetric }
    public var dataSummary: String {
        "\(training.count) training and \(evaluation.count) evaluation examples"
            + (classWeights.map { "; class weights " + $0.map { String(format: "%.4g", $0) }.joined(separator: ", ") } ?? "")
    }
    public var evaluationSize: Int? { evaluation.count }
    public var trainingLengths: [Int] { training.map(\.ids.count) }

    /// Tokenises the task's `train` and `dev` splits (truncated to `max_length` tokens) and loads the encoder,
    /// initialising the classifier with the seed.
    public init(_ setup: TaskSetup) throws {
        let h = setup.hyperparameters, maxLength = h[.maxLength]
        spec = setup.spec
        checkpoint = setup.checkpoint
        tokenizer = try setup.tokenizer()
        let tokenizer = self.tokenizer
        func features(_ split: String) throws -> [SequenceFeature] {
            let (layout, file, _) = try setup.split(split, as: TSVLayout.self)
            return try layout.examples(path: file, labels: setup.spec.labels).map { e in
                guard let target = e.target else { throw DataError(file: e.file, line: e.line, "the \(split) split needs a label column") }
                let encoding = tokenizer.encode(e.textA, pair: e.textB, maxLength: maxLength)
                return SequenceFeature(ids: encoding.ids, typeIds: encoding.typeIds, target: target)
            }
        }
        training = try features("train")
        evaluation = try features("dev")
        evaluationLoop = setup.evaluationLoop
        if spec.isRegression && h[.classWeights] != .none { throw UsageError("class_weights weigh classes; \(spec.name) is a regression task") }
        let weights = try h[.classWeights].resolve(labels: spec.labels ?? [], targets: training.compactMap {
            if case .label(let y) = $0.target { y } else { nil }
        })
        classWeights = weights
        let longest = max(training.map(\.ids.count).max() ?? 0, evaluation.map(\.ids.count).max() ?? 0)
        model = SequenceClassifier(config: checkpoint.config, outputs: spec.labels?.count ?? 1,
                                   context: try setup.buildContext(maxLength: longest), classWeights: weights)
        loadReport = try checkpoint.loadWeights(into: model.parameters, mayBeNew: SequenceClassifier.isHeadParameter, seed: h[.seed])
    }

    public func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double {
        let training = self.training
        model.forward(Self.batch(training, share.examples, padId: tokenizer.padId,
                                 length: share.paddedLength { training[$0].ids.count }), dropout: dropout)
        let loss = model.loss(share.examples.map { training[$0].target! }, scale: gradientScale,
                              normalizer: model.normalizer(share.batch.map { training[$0].target! }))
        model.backward()
        return loss
    }

    public func evaluate() throws -> [String: Double] {
        let predicted = try predict(evaluation, in: evaluationLoop), gold = evaluation.map { $0.target! }
        evaluationPredictions = zip(predicted, gold).map { ExamplePrediction(predicted: Self.text($0), gold: Self.text($1)) }
        return Metrics.compute(spec.metrics, predicted: predicted, gold: gold)
    }

    /// The last evaluation's predicted and gold targets: class indices, or values.
    public private(set) var evaluationPredictions: [ExamplePrediction] = []

    static func text(_ target: Target) -> String {
        switch target {
        case .label(let i): "\(i)"
        case .value(let v): "\(v)"
        }
    }

    static func target(_ text: String) -> Target? {
        if let i = Int(text) { return .label(i) }
        return Float(text).map { .value($0) }
    }

    /// Any of its metrics, computed again from stored predictions.
    public static func score(_ metric: String, _ predictions: ArraySlice<ExamplePrediction>) -> Double? {
        var predicted: [Target] = [], gold: [Target] = []
        predicted.reserveCapacity(predictions.count)
        gold.reserveCapacity(predictions.count)
        for p in predictions {
            guard let a = target(p.predicted), let b = target(p.gold) else { return nil }
            predicted.append(a)
            gold.append(b)
        }
        return Metrics.compute([metric], predicted: predicted, gold: gold)[metric]
    }

    /// Predictions for `features`, in their order, run by `loop` (by default on this process alone).
    public func predict(_ features: [SequenceFeature], in loop: EvaluationLoop? = nil) throws -> [Target] {
        try (loop ?? evaluationLoop.alone).outputs(lengths: features.map(\.ids.count)) { batch in
            model.forward(Self.batch(features, batch, padId: tokenizer.padId))
            return model.predictions().map { target in
                switch target {
                case .label(let y): [Double(y)]
                case .value(let v): [Double(v)]
                }
            }
        }.map { model.isRegression ? .value(Float($0[0])) : .label(Int($0[0])) }
    }

    public func export(to directory: String) throws {
        try HuggingFaceExport.write(to: directory, baseModel: checkpoint, tokenizer: tokenizer,
                                    parameters: model.parameters, head: Self.exportHead(labels: spec.labelNames))
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
        return .init(architecture: architecture, config: config, isHeadParameter: SequenceClassifier.isHeadParameter)
    }

    /// The chosen features, padded on the right to the longest of them.
    package static func batch(_ features: [SequenceFeature], _ indices: ArraySlice<Int>, padId: Int32, length: Int? = nil) -> EncoderBatch {
        EncoderBatch(padding: indices.map { features[$0].ids }, typeIds: indices.map { features[$0].typeIds }, padId: padId,
                     length: length)
    }
}
