import Foundation

/// The span question answering plugin (SQuAD): windows over long contexts, a start and an end logit per
/// token, answers extracted over all windows of a question and scored with SQuAD's official EM and F1.
public final class SpanQATask: TaskPlugin {
    public typealias Split = SQuADLayout
    public static let name = "span-qa"
    public static let architecture = "BertForQuestionAnswering"
    public static let metrics: Set<String> = [
        "exact_match", "f1", "has_answer_exact_match", "has_answer_f1", "no_answer_exact_match", "no_answer_f1",
    ]
    public static var hyperparameters: [HyperparameterDeclaration] { [Hyperparameter.windowOverlap.declaration] }

    public let spec: TaskSpec
    public let checkpoint: BertCheckpoint
    public let tokenizer: Tokenizer
    public let model: QuestionAnsweringModel
    public let loadReport: LoadReport
    public let trainingExamples: [SQuADExample]
    public let evaluationExamples: [SQuADExample]
    public let training: [SpanWindow]
    public let evaluation: [SpanWindow]
    public let extractor: AnswerExtractor
    /// The loop its evaluation runs in: the evaluation batch, shared among the run's processes.
    public let evaluationLoop: EvaluationLoop

    public var parameters: ParameterStore { model.parameters }
    public var mainMetric: String { spec.mainMetric }
    public var evaluationSize: Int? { evaluationExamples.count }
    public var trainingLengths: [Int] { training.map(\.ids.count) }
    public var dataSummary: String {
        "\(trainingExamples.count) training and \(evaluationExamples.count) evaluation questions (\(training.count) and \(evaluation.count) windows)"
    }

    public init(_ setup: TaskSetup) throws {
        let h = setup.hyperparameters, maxLength = h[.maxLength], windowOverlap = h[.windowOverlap]
        spec = setup.spec
        checkpoint = setup.checkpoint
        evaluationLoop = setup.evaluationLoop
        tokenizer = try setup.tokenizer()
        guard windowOverlap >= 0 && windowOverlap < maxLength / 2 else {
            throw DataError(file: spec.path, "window overlap \(windowOverlap) must be at least 0 and less than half the max length \(maxLength)")
        }
        func questions(_ split: String) throws -> [SQuADExample] {
            let (layout, file, isReplaced) = try setup.split(split, as: SQuADLayout.self)
            return try SQuADFile.read(path: file, articles: isReplaced ? nil : layout.articles)
        }
        trainingExamples = try questions("train")
        evaluationExamples = try questions("dev")
        let windower = SpanWindower(tokenizer: tokenizer, maxLength: maxLength, windowOverlap: windowOverlap)
        training = windower.windows(trainingExamples)
        evaluation = windower.windows(evaluationExamples)
        extractor = AnswerExtractor(nullScoreThreshold: trainingExamples.contains { $0.isImpossible } ? 0 : nil)
        model = QuestionAnsweringModel(config: checkpoint.config, context: try setup.buildContext(maxLength: maxLength))
        loadReport = try checkpoint.loadWeights(into: model.parameters, mayBeNew: QuestionAnsweringModel.isHeadParameter, seed: h[.seed])
    }

    public func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double {
        lastPrediction = nil
        let (training, examples) = (self.training, share.examples)
        model.forward(Self.batch(training, examples, padId: tokenizer.padId, length: share.paddedLength { training[$0].ids.count }),
                      dropout: dropout)
        let loss = model.loss(starts: examples.map { training[$0].start }, ends: examples.map { training[$0].end }, scale: gradientScale,
                              batchSize: share.batch.count)
        model.backward()
        return loss
    }

    public func evaluate() throws -> [String: Double] {
        let prediction = try predict(in: evaluationLoop)
        lastPrediction = prediction
        let answers = prediction.answers
        // A file with unanswerable questions is SQuAD 2.0, which has its own official scoring.
        return evaluationExamples.contains(where: \.isImpossible)
            ? SQuADMetrics.evaluateV2(evaluationExamples, predictions: answers)
            : SQuADMetrics.evaluate(evaluationExamples, predictions: answers)
    }

    /// The last evaluation's answers, reused by `finish` while no training step has changed the model since
    /// (predicting SQuAD's dev set again takes minutes).
    private var lastPrediction: (answers: [String: String], best: [String: [AnswerExtractor.Candidate]])?

    /// Answers (and n-best lists) for the evaluation questions, run by `loop` (by default on this process alone).
    public func predict(in loop: EvaluationLoop? = nil) throws -> (answers: [String: String], best: [String: [AnswerExtractor.Candidate]]) {
        // Each window's start logits, then its end logits.
        let logits = try (loop ?? evaluationLoop.alone).outputs(lengths: evaluation.map(\.ids.count)) { batch in
            model.forward(Self.batch(evaluation, batch, padId: tokenizer.padId))
            return batch.enumerated().map { row, w in
                let n = evaluation[w].ids.count
                return (0..<n).map { Double(model.startLogit(sequence: row, token: $0)) }
                    + (0..<n).map { Double(model.endLogit(sequence: row, token: $0)) }
            }
        }.map { $0.map { Float($0) } }
        var windowsOf = [[Int]](repeating: [], count: evaluationExamples.count)
        for (w, window) in evaluation.enumerated() { windowsOf[window.example].append(w) }
        var answers: [String: String] = [:], best: [String: [AnswerExtractor.Candidate]] = [:]
        for (e, example) in evaluationExamples.enumerated() {
            let windows = windowsOf[e]
            let (candidates, nullScore) = extractor.candidates(context: example.context, windows: windows.map { evaluation[$0] }) { i in
                let values = logits[windows[i]], n = values.count / 2
                return (Array(values[0..<n]), Array(values[n...]))
            }
            answers[example.id] = extractor.answer(candidates, nullScore: nullScore)
            best[example.id] = candidates
        }
        return (answers, best)
    }

    /// `predictions-dev.json` in the official `{question_id: answer}` form, and `nbest-dev.json`.
    public func finish(outputDirectory: String) throws -> FinishReport {
        var report = FinishReport()
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let (answers, best) = try lastPrediction ?? predict()
        let predictions = outputDirectory + "/predictions-dev.json", nbest = outputDirectory + "/nbest-dev.json"
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: answers, options: [.sortedKeys]), to: predictions)
        let lists = best.mapValues { candidates -> [[String: Any]] in
            let scores = candidates.map(\.score), top = scores.max() ?? 0
            let weights = scores.map { Foundation.exp($0 - top) }, total = weights.reduce(0, +)
            return zip(candidates, weights).map { c, w in
                ["text": c.text, "probability": w / total, "start_logit": c.startLogit, "end_logit": c.endLogit]
            }
        }
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: lists, options: [.sortedKeys, .prettyPrinted]), to: nbest)
        report.files = [(predictions, "predictions"), (nbest, "nbest")]
        return report
    }

    public func export(to directory: String) throws {
        try HuggingFaceExport.write(to: directory, baseModel: checkpoint, tokenizer: tokenizer, parameters: model.parameters,
                                    head: .init(architecture: Self.architecture, config: [:],
                                                isHeadParameter: QuestionAnsweringModel.isHeadParameter))
    }

    package static func batch(_ windows: [SpanWindow], _ indices: ArraySlice<Int>, padId: Int32, length: Int? = nil) -> EncoderBatch {
        EncoderBatch(padding: indices.map { windows[$0].ids }, typeIds: indices.map { windows[$0].typeIds }, padId: padId,
                     length: length)
    }
}

/// How a split of a span QA task is laid out: a SQuAD JSON file, of which the split takes the articles
/// `[first, end)` (all when absent; a file named by `--train-file` or `--eval-file` is taken whole).
public struct SQuADLayout: TaskFileSection {
    public var articles: Range<Int>?

    public static var keys: Set<String> { ["articles"] }

    enum CodingKeys: String, CodingKey { case articles }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        articles = try c.decodeRangeIfPresent(forKey: .articles)
    }
}

extension Hyperparameter where Value == Int {
    /// Span QA: context tokens shared by consecutive windows of a long context.
    public static var windowOverlap: Self {
        .init("window_overlap", default: 128, help: "Span QA: context tokens shared by consecutive windows (transformers' stride; not Google's doc_stride).")
    }
}
