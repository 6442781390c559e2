import Foundation

extension SpanQATask {
    /// Answers to JSONL `{"question", "context"}` records: one JSON line per question with the best `answer`,
    /// its `score`, `start` and `end` (characters of the context, counted as Python counts them), and `answers`,
    /// the `--top-k` best, each with the same fields.
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        try AnswerPredictor(request.setup).run(request)
    }
}

/// A `BertForQuestionAnswering` model with transformers' question-answering pipeline's answer search, so that
/// users get the answers and scores they know: in each window (the whole question, then as much context as fits;
/// consecutive windows share `overlap` tokens), the start and end logits become probabilities over the context
/// tokens and `[CLS]`; a span's score is P(start)·P(end), at most `maxAnswerLength` tokens long; the best
/// `2·topK + 10` spans of each window are widened to whole words, and spans whose texts are equal (ignoring case)
/// add their scores. With `allowNoAnswer`, the empty answer competes with the smallest P([CLS])² product over the
/// windows. (Evaluation instead follows the SQuAD scripts' rule, `AnswerExtractor`.)
struct AnswerPredictor: Predictor {
    let tokenizer: Tokenizer
    let model: QuestionAnsweringModel
    var parameters: ParameterStore { model.parameters }
    let windower: SpanWindower
    let batchSize, maxLength, topK, maxAnswerLength: Int
    let allowNoAnswer: Bool
    let nullThreshold: Double

    struct Example {
        let context: [Unicode.Scalar]
        let windows: [SpanWindow]
    }

    /// An answer being ranked: its text, summed score and characters.
    struct Candidate {
        var text: String
        var score: Double
        var offsets: Range<Int>
    }

    init(_ setup: PredictionSetup) throws {
        tokenizer = try Tokenizer(directory: setup.model)
        batchSize = setup.batchSize
        maxLength = setup.sequenceLength(standard: 384)
        topK = setup.options[SpanQATask.PredictionOption.topK]
        maxAnswerLength = setup.options[SpanQATask.PredictionOption.maxAnswerLength]
        allowNoAnswer = setup.options[SpanQATask.PredictionOption.allowNoAnswer]
        nullThreshold = setup.options[SpanQATask.PredictionOption.nullThreshold]
        // The whole question goes into every window, as the pipeline does; the overlap is checked per question.
        let overlap = try setup.overlap(length: maxLength, budget: maxLength)
        windower = SpanWindower(tokenizer: tokenizer, maxLength: maxLength, windowOverlap: overlap, maxQuestionTokens: .max)
        model = QuestionAnsweringModel(config: setup.checkpoint.config, context: try setup.buildContext(maxLength: maxLength))
        _ = try setup.checkpoint.loadWeights(into: model.parameters)
    }

    func prepare(_ record: InputRecord, index: Int) throws -> Example {
        let question = try record.string("question"), context = try record.string("context")
        let questionTokens = tokenizer.tokenize(question).count
        let budget = maxLength - questionTokens - 3
        guard budget > windower.windowOverlap else {
            throw DataError(file: record.file, line: record.line, """
                the question has \(questionTokens) tokens, which leaves \(max(0, budget)) of the \(maxLength) for the context, \
                not more than the window overlap \(windower.windowOverlap)
                """)
        }
        let example = SQuADExample(id: String(index), question: question, context: context, answers: [], isImpossible: false, article: 0)
        return Example(context: Array(context.unicodeScalars), windows: windower.windows(of: example, index: index))
    }

    func sequences(of example: Example) -> [ModelInput] {
        example.windows.map { ModelInput(ids: $0.ids, typeIds: $0.typeIds) }
    }

    func forward(_ batch: [ModelInput]) -> [[Float]] {
        model.forward(EncoderBatch(padding: batch.map(\.ids), typeIds: batch.map(\.typeIds), padId: tokenizer.padId))
        return batch.indices.map { b in
            (0..<batch[b].ids.count).flatMap { [model.startLogit(sequence: b, token: $0), model.endLogit(sequence: b, token: $0)] }
        }
    }

    /// The `topK` best answers, the best first.
    func result(of example: Example, outputs: [[Float]]) -> [Answer] {
        var answers: [Candidate] = []
        var nullScore = 1e6
        for (window, logits) in zip(example.windows, outputs) {
            let context = window.offsets.indices.filter { window.offsets[$0] != nil }
            // Probabilities over the context tokens and [CLS], the only positions that may hold an answer.
            func probabilities(_ column: Int) -> [Int: Double] {
                let positions = [0] + context
                let p = softmax(positions.lazy.map { logits[2 * $0 + column] })
                return Dictionary(uniqueKeysWithValues: zip(positions, p))
            }
            var start = probabilities(0), end = probabilities(1)
            nullScore = min(nullScore, start[0]! * end[0]!)
            start[0] = 0
            end[0] = 0
            var spans: [(s: Int, e: Int, score: Double)] = []
            for s in context {
                for e in context where e >= s && e - s < maxAnswerLength { spans.append((s, e, start[s]! * end[e]!)) }
            }
            spans.sort { $0.score > $1.score }
            for span in spans.prefix(2 * topK + 10) {
                // Widened to the words holding the first and the last token, within this window.
                let first = window.words[span.s]!, last = window.words[span.e]!
                let lower = context.filter { window.words[$0] == first }.map { window.offsets[$0]!.lowerBound }.min()!
                let upper = context.filter { window.words[$0] == last }.map { window.offsets[$0]!.upperBound }.max()!
                let text = String(String.UnicodeScalarView(example.context[lower..<upper]))
                if let same = answers.firstIndex(where: { $0.text.lowercased() == text.lowercased() }) {
                    answers[same].score += span.score
                } else {
                    answers.append(Candidate(text: text, score: span.score, offsets: lower..<upper))
                }
            }
        }
        if allowNoAnswer { answers.append(Candidate(text: "", score: nullScore, offsets: 0..<0)) }
        // A stable sort, as Python's: of equal scores the earlier stays first (so the empty answer, added last,
        // must win by more than the threshold).
        let ranked = answers.enumerated().sorted { a, b in
            let x = a.element.text.isEmpty && allowNoAnswer ? a.element.score - nullThreshold : a.element.score
            let y = b.element.text.isEmpty && allowNoAnswer ? b.element.score - nullThreshold : b.element.score
            return x != y ? x > y : a.offset < b.offset
        }.map(\.element).prefix(topK)
        return ranked.map { Answer(text: $0.text, score: $0.score, start: $0.offsets.lowerBound, end: $0.offsets.upperBound) }
    }

    /// The best answer's fields, and `answers`: all of them.
    func line(_ answers: [Answer], of example: Example) -> String {
        var line = (answers.first ?? Answer(text: "", score: 0, start: 0, end: 0)).json
        line["answers"] = answers.map(\.json)
        return JSONOutput.line(line)
    }
}

extension SpanQATask {
    public static var predictionOptions: [HyperparameterDeclaration] {
        [PredictionOptions.windowOverlap.declaration, PredictionOption.topK.declaration, PredictionOption.maxAnswerLength.declaration,
         PredictionOption.allowNoAnswer.declaration, PredictionOption.nullThreshold.declaration]
    }

    /// What its models' predictions let a user set (`PredictionOptions`), with the question-answering
    /// pipeline's defaults; its window is 384 tokens unless `max_length` says otherwise.
    public enum PredictionOption {
        public static let topK = Hyperparameter<Int>("top_k", default: 1, help: "Question answering: answers listed per question.",
                                                     problem: positive)
        public static let maxAnswerLength = Hyperparameter<Int>("max_answer_length", default: 15,
                                                                help: "Question answering: the longest answer, in tokens.", problem: positive)
        public static let allowNoAnswer = Hyperparameter<Bool>(
            "allow_no_answer", default: false, help: "Question answering (SQuAD 2.0-style models): the empty answer competes with the spans.")
        public static let nullThreshold = Hyperparameter<Double>(
            "null_threshold", default: 0,
            help: "Question answering: the empty answer wins only when its score beats the best span's by more than this.")
    }
}
