import Foundation

/// The span question answering plugin (SQuAD): windows over long contexts, a start and an end logit per
/// token, answers extracted over all windows of a question and scored with SQuAD's official EM and F1.
public final class SpanQATask: TrainableTask {
    public let spec: TaskSpec
    public let checkpoint: BertCheckpoint
    public let tokenizer: BertTokenizer
    public let model: QuestionAnsweringModel
    public let loadReport: LoadReport
    public let trainingExamples: [SQuADExample]
    public let evaluationExamples: [SQuADExample]
    public let training: [SpanWindow]
    public let evaluation: [SpanWindow]
    public let extractor: AnswerExtractor
    public let evaluationBatchSize: Int

    public var parameters: ParameterStore { model.parameters }
    public var mainMetric: String { spec.mainMetric }
    public var trainingLengths: [Int] { training.map(\.ids.count) }
    public var dataSummary: String {
        "\(trainingExamples.count) training and \(evaluationExamples.count) evaluation questions (\(training.count) and \(evaluation.count) windows)"
    }

    public init(spec: TaskSpec, checkpoint: BertCheckpoint, maxLength: Int, windowOverlap: Int, batchSize: Int,
                evaluationBatchSize: Int = 32, seed: UInt64, precision: Precision = .float32, trainFile: String? = nil,
                evalFile: String? = nil) throws {
        self.spec = spec
        self.checkpoint = checkpoint
        self.evaluationBatchSize = evaluationBatchSize
        tokenizer = try BertTokenizer(directory: checkpoint.directory)
        guard windowOverlap >= 0 && windowOverlap < maxLength / 2 else {
            throw DataError(file: spec.path, "window overlap \(windowOverlap) must be at least 0 and less than half the max length \(maxLength)")
        }
        trainingExamples = try spec.questions("train", file: trainFile)
        evaluationExamples = try spec.questions("dev", file: evalFile)
        let windower = SpanWindower(tokenizer: tokenizer, maxLength: maxLength, windowOverlap: windowOverlap)
        training = windower.windows(trainingExamples)
        evaluation = windower.windows(evaluationExamples)
        extractor = AnswerExtractor(nullScoreThreshold: trainingExamples.contains { $0.isImpossible } ? 0 : nil)
        model = QuestionAnsweringModel(config: checkpoint.config, maxBatch: max(batchSize, evaluationBatchSize), maxLength: maxLength,
                                       precision: precision)
        loadReport = try checkpoint.loadWeights(into: model.parameters, mayBeNew: QuestionAnsweringModel.isHeadParameter, seed: seed)
    }

    public func trainStep(_ examples: ArraySlice<Int>, dropout: DropoutMode, gradientScale: Float) -> Double {
        lastPrediction = nil
        model.forward(Self.batch(training, examples, padId: tokenizer.padId), dropout: dropout)
        let loss = model.loss(starts: examples.map { training[$0].start }, ends: examples.map { training[$0].end }, scale: gradientScale)
        model.backward()
        return loss
    }

    public func evaluate() -> [String: Double] {
        let prediction = predict()
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

    /// Answers (and n-best lists) for the evaluation questions.
    public func predict() -> (answers: [String: String], best: [String: [AnswerExtractor.Candidate]]) {
        var logits = [[Float]](repeating: [], count: evaluation.count)
        let order = evaluation.indices.sorted { evaluation[$0].ids.count < evaluation[$1].ids.count }
        for start in stride(from: 0, to: order.count, by: evaluationBatchSize) {
            let indices = order[start..<min(start + evaluationBatchSize, order.count)]
            model.forward(Self.batch(evaluation, indices, padId: tokenizer.padId))
            for (row, w) in indices.enumerated() {
                let n = evaluation[w].ids.count
                logits[w] = (0..<n).map { model.startLogit(sequence: row, token: $0) } + (0..<n).map { model.endLogit(sequence: row, token: $0) }
            }
        }
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
        let (answers, best) = lastPrediction ?? predict()
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
                                    head: .init(architecture: "BertForQuestionAnswering", config: [:],
                                                isHeadParameter: QuestionAnsweringModel.isHeadParameter))
    }

    static func batch(_ windows: [SpanWindow], _ indices: ArraySlice<Int>, padId: Int32) -> EncoderBatch {
        EncoderBatch(padding: indices.map { windows[$0].ids }, typeIds: indices.map { windows[$0].typeIds }, padId: padId)
    }
}
