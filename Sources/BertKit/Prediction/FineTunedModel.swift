import Foundation

/// A fine-tuned model, loaded once from its folder (a `finetune export` or a run's `best/`), that a program calls to
/// predict: one text or a batch, from any thread.
///
/// ```swift
/// let model = try FineTunedModel(folder: "exported/mrpc", precision: .int8)
/// let result = try model.classify("The company said profits rose.", pair: "Profits went up, the firm said.")
/// print(result.label, result.score)   // the label name from config.json, and its probability
/// ```
///
/// Every call goes the way `finetune predict` goes (the head's predictor, `EvaluationLoop`'s batches by length),
/// so a program gets the numbers the command writes. Loading reads the weights and packs them for inference (or
/// quantises them, in int8) once: about the time of one batch's forward pass, and the model's weights once more in
/// memory. Calls from several threads are batched together (`Batching`): their texts share forward passes, each
/// of which uses every core (`Parallel`) and the model's activation buffers, sized for `batch_size` sequences of
/// the model's maximum length.
public final class FineTunedModel: Sendable {
    /// What a model predicts, from its config.json (architecture and problem type).
    public enum Head: String, Sendable, CaseIterable {
        /// One label per text or pair (`BertForSequenceClassification`).
        case textClassification = "text-classification"
        /// Any number of labels per text (`problem_type: multi_label_classification`).
        case multiLabelClassification = "multi-label-classification"
        /// A number per text or pair (`problem_type: regression`).
        case regression
        /// Entities in a text (`BertForTokenClassification`).
        case tokenClassification = "token-classification"
        /// Answers to a question in a context (`BertForQuestionAnswering`).
        case questionAnswering = "question-answering"
        /// Fillers for `[MASK]` tokens (`BertForPreTraining`, `BertForMaskedLM`).
        case fillMask = "fill-mask"
    }

    /// The model folder.
    public let folder: String
    public let head: Head
    /// The label names of a classification model, in its order; empty for the other heads.
    public let labels: [String]
    /// The options the model predicts with (`PredictionOptions` and its head's), precision among them.
    public let options: Hyperparameters
    /// A multi-label model's threshold: the `threshold` option, else the model's own, else 0.5.
    private let threshold: Double

    /// The tokenizer of the model's folder.
    public let tokenizer: Tokenizer

    private let queue: HeadQueue

    /// One predictor per head, the types that `finetune predict` runs, each behind the queue that batches callers.
    private enum HeadQueue {
        case classification(PredictionQueue<ClassificationPredictor>)
        case entities(PredictionQueue<EntityPredictor>)
        case answers(PredictionQueue<AnswerPredictor>)
        case fillMask(PredictionQueue<FillMaskPredictor>)
    }

    /// Loads the model in `folder` to predict in `precision` (fp32, bf16 or int8), with `options` (those of
    /// `PredictionOptions` and of the model's head, e.g. `SpanQATask.PredictionOption.topK`); an option set that
    /// this head does not read is an error. `batching` sets the token budget of a forward pass shared by callers.
    public init(folder: String, precision: Precision = .float32, options: Hyperparameters = Hyperparameters(),
                batching: Batching = Batching()) throws {
        var setup = try PredictionSetup(model: folder, options: options)
        setup.options[PredictionOptions.precision] = precision
        let plugin = try setup.plugin()
        let readable = Set(PredictionOptions.declarations(for: plugin).map(\.name))
        if let unknown = options.values.keys.sorted().first(where: { !readable.contains($0) }) {
            throw UsageError("\(unknown) is not an option of \(plugin.name) models (they read \(readable.sorted().joined(separator: ", ")))")
        }
        let loaded: HeadQueue
        switch plugin {
        case is SequenceClassificationTask.Type:
            let regression = try setup.checkpoint.problemType() == "regression"
            labels = regression ? [] : try setup.labels(of: "classification")
            head = regression ? .regression : .textClassification
            loaded = .classification(try Self.queue(ClassificationPredictor(
                setup, outputs: max(labels.count, 1),
                line: SequenceClassificationTask.jsonLine(labels: labels, regression: regression)), batching))
        case is MultiLabelClassificationTask.Type:
            labels = try setup.labels(of: "classification")
            head = .multiLabelClassification
            loaded = .classification(try Self.queue(ClassificationPredictor(
                setup, outputs: labels.count,
                line: MultiLabelClassificationTask.jsonLine(labels: labels, threshold: try MultiLabelClassificationTask.threshold(setup))), batching))
        case is TokenClassificationTask.Type:
            let predictor = try EntityPredictor(setup)
            (labels, head, loaded) = (predictor.labels, .tokenClassification, .entities(try Self.queue(predictor, batching)))
        case is SpanQATask.Type:
            (labels, head, loaded) = ([], .questionAnswering, .answers(try Self.queue(AnswerPredictor(setup), batching)))
        case is PreTrainingTask.Type:
            (labels, head, loaded) = ([], .fillMask, .fillMask(try Self.queue(FillMaskPredictor(setup), batching)))
        default:
            throw UsageError("\(folder) is a \(plugin.architecture) model, which `finetune predict` runs but FineTunedModel does not")
        }
        self.folder = folder
        self.options = setup.options
        threshold = head == .multiLabelClassification ? try MultiLabelClassificationTask.threshold(setup) : 0.5
        tokenizer = try Tokenizer(directory: folder)
        queue = loaded
    }

    /// The predictor behind its queue, its weights packed (or quantised) for the model's life.
    private static func queue<P: Predictor>(_ predictor: P, _ batching: Batching) throws -> PredictionQueue<P> {
        predictor.parameters.fixWeightsForGood()
        return try PredictionQueue(predictor, batching: batching)
    }

    // MARK: Sequence classification

    /// The class of a text, or of a pair (`text`, `pair`), under a single-label model.
    public func classify(_ text: String, pair: String? = nil) throws -> TextClassification {
        try classify([TextInput(text, pair: pair)])[0]
    }

    /// The class of each text or pair, in order.
    public func classify(_ inputs: [TextInput]) throws -> [TextClassification] {
        try logits(inputs, for: .textClassification).map { TextClassification(logits: $0, labels: labels) }
    }

    /// The labels of each text or pair under a multi-label model, at the model's threshold (or the `threshold` option).
    public func classifyMultiLabel(_ inputs: [TextInput]) throws -> [MultiLabelClassification] {
        try logits(inputs, for: .multiLabelClassification).map {
            MultiLabelClassification(logits: $0, labels: labels, threshold: threshold)
        }
    }

    /// The value of each text or pair under a regression model.
    public func regress(_ inputs: [TextInput]) throws -> [Double] {
        try logits(inputs, for: .regression).map { Double($0[0]) }
    }

    private func logits(_ inputs: [TextInput], for wanted: Head) throws -> [[Float]] {
        try check(wanted)
        let records = inputs.enumerated().map { InputRecord(file: "<input>", line: $0 + 1, fields: $1.fields) }
        guard case let .classification(q) = queue else { preconditionFailure("checked above") }
        return try q.predict(records).map(\.output)
    }

    // MARK: Token classification

    /// The entities of each text, in order of their position (the `aggregation` option says how sub-tokens make words).
    public func entities(in texts: [String]) throws -> [[Entity]] {
        try check(.tokenClassification)
        let records = texts.enumerated().map { InputRecord(file: "<input>", line: $0 + 1, fields: ["text": $1]) }
        guard case let .entities(q) = queue else { preconditionFailure("checked above") }
        return try q.predict(records).map {
            guard case let .entities(entities) = $0.output else { preconditionFailure("a text has entities") }
            return entities
        }
    }

    /// The entities of one text.
    public func entities(in text: String) throws -> [Entity] { try entities(in: [text])[0] }

    // MARK: Question answering

    /// The best answers (`top_k`, default 1) to each question in its context, the best first.
    public func answer(_ questions: [Question]) throws -> [[Answer]] {
        try check(.questionAnswering)
        let records = questions.enumerated().map {
            InputRecord(file: "<input>", line: $0 + 1, fields: ["question": $1.question, "context": $1.context])
        }
        guard case let .answers(q) = queue else { preconditionFailure("checked above") }
        return try q.predict(records).map(\.output)
    }

    /// The best answers to one question.
    public func answer(question: String, context: String) throws -> [Answer] {
        try answer([Question(question, context: context)])[0]
    }

    // MARK: Fill-mask

    /// The `top_k` (default 5) fillers of each `[MASK]` of each text, the most likely first.
    public func fillMask(_ texts: [String]) throws -> [[[MaskFill]]] {
        try check(.fillMask)
        let records = texts.enumerated().map { InputRecord(file: "<input>", line: $0 + 1, fields: ["text": $1]) }
        guard case let .fillMask(q) = queue else { preconditionFailure("checked above") }
        return try q.predict(records).map(\.output)
    }

    /// The fillers of each `[MASK]` of one text.
    public func fillMask(_ text: String) throws -> [[MaskFill]] { try fillMask([text])[0] }

    // MARK: Any head, as `finetune predict` writes it

    /// The line `finetune predict` writes for each record (a JSONL input's objects: `text` and `text_pair`,
    /// `question` and `context`), in order: what a server answers, byte for byte what the command writes.
    public func predictionLines(_ records: [[String: Any]]) throws -> [String] {
        try lineQueue.lines(Self.inputs(records))
    }

    /// The same, awaited: a server's request. When `deadline` passes before the model got to every record, the
    /// call throws `QueueError.deadlinePassed`; cancelling the task takes its waiting texts out of the queue.
    public func predictionLines(_ records: [[String: Any]], deadline: ContinuousClock.Instant?) async throws -> [String] {
        try await lineQueue.lines(Self.inputs(records), deadline: deadline)
    }

    /// The head's queue, for what every head answers alike: result lines.
    private var lineQueue: any LineQueue {
        switch queue {
        case let .classification(q): q
        case let .entities(q): q
        case let .answers(q): q
        case let .fillMask(q): q
        }
    }

    private static func inputs(_ records: [[String: Any]]) -> [InputRecord] {
        records.enumerated().map { InputRecord(file: "<input>", line: $0 + 1, fields: $1) }
    }

    private func check(_ wanted: Head) throws {
        guard head == wanted else { throw WrongHead(folder: folder, head: head, asked: wanted) }
    }
}

/// A text, or a pair of texts, to classify.
public struct TextInput: Sendable, Hashable, ExpressibleByStringLiteral {
    public var text: String
    public var pair: String?

    public init(_ text: String, pair: String? = nil) {
        self.text = text
        self.pair = pair
    }

    public init(stringLiteral text: String) { self.init(text) }

    var fields: [String: Any] { pair.map { ["text": text, "text_pair": $0] } ?? ["text": text] }
}

/// A question and the context to find its answer in.
public struct Question: Sendable, Hashable {
    public var question: String
    public var context: String

    public init(_ question: String, context: String) {
        self.question = question
        self.context = context
    }
}

/// A model asked for what its head does not predict (entities of a text classifier, say).
public struct WrongHead: Error, CustomStringConvertible, Sendable {
    public let folder: String
    public let head: FineTunedModel.Head
    public let asked: FineTunedModel.Head

    public var description: String {
        "\(folder) is a \(head.rawValue) model; it cannot answer a \(asked.rawValue) request"
    }
}
