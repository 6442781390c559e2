import Foundation

/// The multi-label classification plugin: each text (or pair) has any number of its task's labels (GoEmotions'
/// emotions, say). One sigmoid output per label on the pooled `[CLS]` output (`SequenceClassifier` with its
/// multi-label loss, binary cross-entropy), a label predicted when its probability reaches the threshold
/// (`--threshold`, or the one that maximises dev micro-F1 with `--tune-threshold`). Exported as
/// `BertForSequenceClassification` with `problem_type: multi_label_classification`, which transformers scores
/// the same way.
public final class MultiLabelClassificationTask: TaskPlugin {
    public typealias Split = MultiLabelLayout
    public static let name = "multi-label-classification"
    public static let architecture = "BertForSequenceClassification"
    public static let problemType = "multi_label_classification"
    public static let metrics: Set<String> = ["micro_f1", "macro_f1", "micro_precision", "micro_recall", "subset_accuracy"]
    public static var hyperparameters: [HyperparameterDeclaration] {
        [Hyperparameter.threshold.declaration, Hyperparameter.tuneThreshold.declaration]
    }

    public static func validate(_ spec: TaskSpec) throws {
        if spec.labels == nil { throw DataError(file: spec.path, "a multi-label task needs its labels") }
    }

    public static func predicts(_ config: [String: Any]) -> Bool {
        namesArchitecture(config) && config["problem_type"] as? String == problemType
    }

    /// A tokenised text or pair and its labels' indices.
    public struct Feature: Sendable {
        public let ids: [Int32]
        public let typeIds: [Int32]
        public let labels: [Int]
    }

    public let spec: TaskSpec
    public let labels: [String]
    public let checkpoint: BertCheckpoint
    public let tokenizer: Tokenizer
    public let model: SequenceClassifier
    public let loadReport: LoadReport
    public let training: [Feature]
    public let evaluation: [Feature]
    /// The loop its evaluation runs in: the evaluation batch, shared among the run's processes.
    public let evaluationLoop: EvaluationLoop
    /// The decision threshold: the hyper-parameter's, or after an evaluation with `tune_threshold` the best one.
    public private(set) var threshold: Double
    private let tunesThreshold: Bool

    public var parameters: ParameterStore { model.parameters }
    public var mainMetric: String { spec.mainMetric }
    public var evaluationSize: Int? { evaluation.count }
    public var trainingLengths: [Int] { training.map(\.ids.count) }
    public var dataSummary: String {
        let perText = Double(training.reduce(0) { $0 + $1.labels.count }) / Double(max(1, training.count))
        return "\(training.count) training and \(evaluation.count) evaluation examples, \(labels.count) labels, \(String(format: "%.2f", perText)) per training text"
    }

    public init(_ setup: TaskSetup) throws {
        let h = setup.hyperparameters
        spec = setup.spec
        labels = spec.labels!
        checkpoint = setup.checkpoint
        tokenizer = try setup.tokenizer()
        threshold = h[.threshold]
        tunesThreshold = h[.tuneThreshold]
        evaluationLoop = setup.evaluationLoop
        let (tokenizer, labels) = (self.tokenizer, self.labels)
        func features(_ split: String) throws -> [Feature] {
            let (layout, file, _) = try setup.split(split, as: MultiLabelLayout.self)
            return try layout.examples(path: file, labels: labels).map { text, pair, indices in
                let encoding = tokenizer.encode(text, pair: pair, maxLength: h[.maxLength])
                return Feature(ids: encoding.ids, typeIds: encoding.typeIds, labels: indices)
            }
        }
        training = try features("train")
        evaluation = try features("dev")
        let longest = max(training.map(\.ids.count).max() ?? 0, evaluation.map(\.ids.count).max() ?? 0)
        model = SequenceClassifier(config: checkpoint.config, outputs: labels.count, context: try setup.buildContext(maxLength: longest))
        loadReport = try checkpoint.loadWeights(into: model.parameters, mayBeNew: SequenceClassifier.isHeadParameter, seed: h[.seed])
    }

    public func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double {
        let (training, examples) = (self.training, share.examples)
        model.forward(EncoderBatch(padding: examples.map { training[$0].ids }, typeIds: examples.map { training[$0].typeIds },
                                   padId: tokenizer.padId, length: share.paddedLength { training[$0].ids.count }),
                      dropout: dropout)
        let loss = model.loss(multiLabel: examples.map { training[$0].labels }, scale: gradientScale,
                              batchSize: share.batch.count)
        model.backward()
        return loss
    }

    /// Every label's probability for each feature, in their order, run by `loop` (by default on this process alone).
    public func probabilities(_ features: [Feature], in loop: EvaluationLoop? = nil) throws -> [[Double]] {
        let k = labels.count
        return try (loop ?? evaluationLoop.alone).outputs(lengths: features.map(\.ids.count)) { batch in
            model.forward(EncoderBatch(padding: batch.map { features[$0].ids }, typeIds: batch.map { features[$0].typeIds },
                                       padId: tokenizer.padId))
            return (0..<batch.count).map { r in (0..<k).map { Self.sigmoid(model.logits[r * k + $0]) } }
        }
    }

    /// Micro and macro F1, micro precision and recall, subset accuracy and every label's F1 (`f1_LABEL`) at the
    /// threshold; with `tune_threshold`, first the threshold (0.01 to 0.99) that maximises micro-F1, reported as
    /// `threshold` and kept for prediction and export.
    public func evaluate() throws -> [String: Double] {
        let probabilities = try probabilities(evaluation, in: evaluationLoop)
        let gold = evaluation.map { Set($0.labels) }
        func predicted(at t: Double) -> [Set<Int>] { probabilities.map { p in Set(p.indices.filter { p[$0] >= t }) } }
        if tunesThreshold {
            let candidates = (1...99).map { Double($0) / 100 }
            threshold = candidates.max { a, b in
                MultiLabelMetrics.score(gold: gold, predicted: predicted(at: a), labels: labels.count).microF1
                    < MultiLabelMetrics.score(gold: gold, predicted: predicted(at: b), labels: labels.count).microF1
            }!
        }
        let score = MultiLabelMetrics.score(gold: gold, predicted: predicted(at: threshold), labels: labels.count)
        var metrics = ["micro_f1": score.microF1, "macro_f1": score.macroF1, "micro_precision": score.microPrecision,
                       "micro_recall": score.microRecall, "subset_accuracy": score.subsetAccuracy]
        for (label, f1) in zip(labels, score.perLabelF1) { metrics["f1_" + label] = f1 }
        if tunesThreshold { metrics["threshold"] = threshold }
        return metrics
    }

    public func export(to directory: String) throws {
        let names = spec.labelNames ?? labels
        let config: [String: Any] = [
            "id2label": Dictionary(uniqueKeysWithValues: names.enumerated().map { (String($0), $1) }),
            "label2id": Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) }),
            "problem_type": Self.problemType, "threshold": threshold,
        ]
        try HuggingFaceExport.write(to: directory, baseModel: checkpoint, tokenizer: tokenizer, parameters: model.parameters,
                                    head: .init(architecture: Self.architecture, config: config,
                                                isHeadParameter: SequenceClassifier.isHeadParameter))
    }

    /// The labels whose probability reaches the threshold, and every label's probability (the sigmoid of its
    /// logit), per text: JSONL `labels` and `scores` by label, or TSV (`--output` ending in `.tsv`): index, the
    /// labels (comma-separated), then the probabilities. The threshold is `--threshold`, else the model's own
    /// (`threshold` in config.json, tuned or set when it was trained), else 0.5.
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        let setup = request.setup
        let labels = try setup.labels(of: "classification")
        let threshold = try self.threshold(setup)
        let columns = { (task: TaskSpec, split: String) in try task.layout(of: split, as: MultiLabelLayout.self).columns }
        if request.output.hasSuffix(".tsv") {
            return try ClassificationPredictor(setup, outputs: labels.count, header: "index\tlabels" + labels.map { "\t" + $0 }.joined(),
                                               tsvColumns: columns, line: { index, z in
                let result = MultiLabelClassification(logits: z, labels: labels, threshold: threshold)
                return "\(index)\t\(result.labels.joined(separator: ","))" + result.scores.map { "\t\(Float($0.score))" }.joined()
            }).run(request)
        }
        return try ClassificationPredictor(setup, outputs: labels.count, tsvColumns: columns,
                                           line: jsonLine(labels: labels, threshold: threshold)).run(request)
    }

    /// A JSONL output line from a text's logits.
    static func jsonLine(labels: [String], threshold: Double) -> (Int, [Float]) -> String {
        { _, z in JSONOutput.line(MultiLabelClassification(logits: z, labels: labels, threshold: threshold).json) }
    }

    /// The threshold of a prediction: the option's, else the model's own (`threshold` in config.json, tuned or set
    /// when it was trained), else 0.5.
    static func threshold(_ setup: PredictionSetup) throws -> Double {
        try setup.options[PredictionOption.threshold] ?? (setup.checkpoint.rawConfig()["threshold"] as? Double) ?? 0.5
    }

    /// A logit's probability.
    static func sigmoid(_ z: Float) -> Double { 1 / (1 + Foundation.exp(-Double(z))) }
}

/// How a split of a multi-label task is laid out: a TSV file as sequence classification's (`TSVLayout`), whose
/// label column lists a text's labels, separated by `labelSeparator` (default ","), by name or, with
/// `labelIndices`, by their index in the task's labels (as GoEmotions writes them). An empty list is a text
/// with no label.
public struct MultiLabelLayout: TaskFileSection {
    public var columns: TSVLayout
    public var labelSeparator = ","
    public var labelIndices = false

    public static var keys: Set<String> { TSVLayout.keys.union(["labelSeparator", "labelIndices"]) }

    enum CodingKeys: String, CodingKey { case labelSeparator, labelIndices }

    public init(from decoder: Decoder) throws {
        columns = try TSVLayout(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        labelSeparator = try c.decodeIfPresent(String.self, forKey: .labelSeparator) ?? ","
        labelIndices = try c.decodeIfPresent(Bool.self, forKey: .labelIndices) ?? false
        guard !labelSeparator.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .labelSeparator, in: c, debugDescription: "the separator must not be empty")
        }
    }

    /// Each line's text, pair and label indices; a label that is not one of `labels` is an error naming the
    /// file and line.
    public func examples(path: String, labels: [String]) throws -> [(String, String?, [Int])] {
        guard columns.label != nil else { throw DataError(file: path, "this split has no label column") }
        let ids = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        return try columns.rows(path: path).map { row in
            let written = row.label!.split(separator: Character(labelSeparator), omittingEmptySubsequences: true)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            let indices = try written.map { label -> Int in
                let index = labelIndices ? Int(label).flatMap { labels.indices.contains($0) ? $0 : nil } : ids[label]
                guard let index else {
                    throw DataError(file: path, line: row.line, labelIndices
                        ? "label '\(label)' is not an index of the task's \(labels.count) labels"
                        : "unknown label '\(label)'; expected some of \(labels.joined(separator: ", "))")
                }
                return index
            }
            return (row.textA, row.textB, Array(Set(indices)).sorted())
        }
    }
}

extension MultiLabelClassificationTask {
    public static var predictionOptions: [HyperparameterDeclaration] { [PredictionOption.threshold.declaration] }

    /// What its models' predictions let a user set (`PredictionOptions`).
    public enum PredictionOption {
        public static let threshold = Hyperparameter<Double?>(
            "threshold", default: nil, help: "Multi-label: predict a label when its probability reaches this (default: the model's own, else 0.5).",
            problem: { $0.map { $0 > 0 && $0 < 1 ? nil : "must be in (0, 1)" } ?? nil })
    }
}

extension Hyperparameter where Value == Double {
    public static var threshold: Self {
        .init("threshold", default: 0.5, help: "Multi-label: a label is predicted when its probability reaches this.",
              problem: { $0 > 0 && $0 < 1 ? nil : "must be in (0, 1)" })
    }
}

extension Hyperparameter where Value == Bool {
    public static var tuneThreshold: Self {
        .init("tune_threshold", default: false, help: "Multi-label: use the threshold that maximises dev micro-F1 (recorded as the metric threshold).")
    }
}
