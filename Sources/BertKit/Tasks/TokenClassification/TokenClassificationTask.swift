import Foundation

/// A window of a sentence as the encoder sees it: `[CLS]`, the sub-tokens of some of its words, `[SEP]`.
public struct TokenWindow: Sendable {
    public let ids: [Int32]
    /// Training label of each token; `TokenClassifier.ignored` where the token takes no part in the loss.
    public let labels: [Int32]
    public let sentence: Int
    /// For each word of the window (by index in its sentence), the token that carries its prediction.
    public let wordTokens: [(word: Int, token: Int)]
}

/// The token classification plugin: named-entity tagging on CoNLL-style files. Each word's label goes on its
/// first sub-token (or, with `labelAllSubtokens`, on every sub-token, `B-` becoming `I-` after the first);
/// predictions are read back per word, so evaluation counts words, never sub-tokens. Sentences longer than the
/// window are split into consecutive windows, so every word gets a prediction.
public final class TokenClassificationTask: TaskPlugin {
    public typealias Split = CoNLLLayout
    public typealias Settings = CoNLLSettings
    public static let name = "token-classification"
    public static let architecture = "BertForTokenClassification"
    public static let metrics: Set<String> = ["f1", "precision", "recall", "accuracy"]
    public static var hyperparameters: [HyperparameterDeclaration] {
        [Hyperparameter.labelAllSubtokens.declaration, Hyperparameter.classWeights.declaration]
    }

    public static func validate(_ spec: TaskSpec) throws {
        if spec.labels == nil { throw DataError(file: spec.path, "a token classification task needs its labels") }
    }

    public let spec: TaskSpec
    public let checkpoint: BertCheckpoint
    public let tokenizer: Tokenizer
    public let model: TokenClassifier
    public let loadReport: LoadReport
    public let labels: [String]
    public let trainingSentences: [TaggedSentence]
    public let evaluationSentences: [TaggedSentence]
    public let training: [TokenWindow]
    public let evaluation: [TokenWindow]
    /// The loop its evaluation runs in: the evaluation batch, shared among the run's processes.
    public let evaluationLoop: EvaluationLoop
    /// Each label's weight in the loss, when `class_weights` sets them (`balanced` counts the labelled tokens).
    public let classWeights: [Float]?

    public var parameters: ParameterStore { model.parameters }
    public var mainMetric: String { spec.mainMetric }
    public var dataSummary: String {
        "\(trainingSentences.count) training and \(evaluationSentences.count) evaluation sentences (\(training.count) and \(evaluation.count) windows)"
            + (classWeights.map { "; class weights " + $0.map { String(format: "%.4g", $0) }.joined(separator: ", ") } ?? "")
    }
    private let setup: TaskSetup
    private let windower: Windower
    public var evaluationSize: Int? { evaluationSentences.count }
    public var trainingLengths: [Int] { training.map(\.ids.count) }

    public init(_ setup: TaskSetup) throws {
        let h = setup.hyperparameters
        self.setup = setup
        spec = setup.spec
        checkpoint = setup.checkpoint
        labels = spec.labels!
        evaluationLoop = setup.evaluationLoop
        tokenizer = try setup.tokenizer()
        trainingSentences = try setup.sentences("train")
        evaluationSentences = try setup.sentences("dev")
        let windower = Windower(tokenizer: tokenizer, labels: labels, maxLength: h[.maxLength],
                                labelAllSubtokens: h[.labelAllSubtokens])
        self.windower = windower
        training = windower.windows(trainingSentences)
        evaluation = windower.windows(evaluationSentences)
        let weights = try h[.classWeights].resolve(labels: labels, targets: training.flatMap {
            $0.labels.filter { $0 != TokenClassifier.ignored }.map(Int.init)
        })
        classWeights = weights
        model = TokenClassifier(config: checkpoint.config, labels: labels.count, context: try setup.buildContext(maxLength: h[.maxLength]),
                                classWeights: weights)
        loadReport = try checkpoint.loadWeights(into: model.parameters, mayBeNew: TokenClassifier.isHeadParameter, seed: h[.seed])
    }

    public func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double {
        let training = self.training
        let (batch, tokenLabels) = Self.batch(training, share.examples, padId: tokenizer.padId,
                                              length: share.paddedLength { training[$0].ids.count })
        model.forward(batch, scoring: { tokenLabels[$0] != TokenClassifier.ignored }, dropout: dropout)
        let loss = model.loss(tokenLabels, scale: gradientScale,
                              normalizer: model.normalizer(share.batch.lazy.flatMap { training[$0].labels }))
        model.backward()
        return loss
    }

    public func evaluate() throws -> [String: Double] {
        let predicted = try predict(evaluation, sentences: evaluationSentences, in: evaluationLoop)
        evaluationPredictions = zip(predicted, evaluationSentences).map {
            ExamplePrediction(predicted: $0.joined(separator: " "), gold: $1.tags.joined(separator: " "))
        }
        return Self.metrics(gold: evaluationSentences.map(\.tags), predicted: predicted)
    }

    /// The last evaluation's predicted and gold tags of each sentence, space-separated.
    public private(set) var evaluationPredictions: [ExamplePrediction] = []

    /// Any of its metrics, computed again from stored predictions.
    public static func score(_ metric: String, _ predictions: ArraySlice<ExamplePrediction>) -> Double? {
        func tags(_ text: String) -> [String] { text.split(separator: " ").map(String.init) }
        return metrics(gold: predictions.map { tags($0.gold) }, predicted: predictions.map { tags($0.predicted) })[metric]
    }

    /// Entity-level F1, precision and recall, overall and per type (`f1_PER`, `precision_PER`, ...), and word
    /// accuracy.
    public static func metrics(gold: [[String]], predicted: [[String]]) -> [String: Double] {
        let (overall, byType, accuracy) = EntityMetrics.score(gold: gold, predicted: predicted)
        var metrics = ["f1": overall.f1, "precision": overall.precision, "recall": overall.recall, "accuracy": accuracy]
        for (type, score) in byType {
            metrics["f1_" + type] = score.f1
            metrics["precision_" + type] = score.precision
            metrics["recall_" + type] = score.recall
        }
        return metrics
    }

    /// A tag for every word of every sentence. A word that tokenizes to nothing (only characters the
    /// normaliser removes) cannot be tagged by the model and is predicted `O`.
    /// `loop` runs the batches (by default on this process alone).
    public func predict(_ windows: [TokenWindow], sentences: [TaggedSentence], in loop: EvaluationLoop? = nil) throws -> [[String]] {
        // Each window's label index for each of its words.
        let outputs = try (loop ?? evaluationLoop.alone).outputs(lengths: windows.map(\.ids.count)) { indices in
            let (batch, _) = Self.batch(windows, indices, padId: tokenizer.padId)
            // Each word's tag is its first token's: only those are scored.
            let T = batch.sequenceLength
            var wordStarts = [Bool](repeating: false, count: batch.tokenCount)
            for (row, w) in indices.enumerated() {
                for (_, token) in windows[w].wordTokens { wordStarts[row * T + token] = true }
            }
            model.forward(batch, scoring: { wordStarts[$0] })
            return indices.enumerated().map { row, w in
                windows[w].wordTokens.map { _, token in Double(model.prediction(token: row * T + token)) }
            }
        }
        // Windows cover disjoint words of their sentence.
        var tags = sentences.map { Array(repeating: "O", count: $0.words.count) }
        for (window, predicted) in zip(windows, outputs) {
            for ((word, _), label) in zip(window.wordTokens, predicted) { tags[window.sentence][word] = labels[Int(label)] }
        }
        return tags
    }

    /// Writes `word gold predicted` lines, a blank line between sentences: the input conlleval reads.
    public static func writePredictions(_ sentences: [TaggedSentence], _ predicted: [[String]], to path: String) throws {
        var text = ""
        for (sentence, tags) in zip(sentences, predicted) {
            for (i, word) in sentence.words.enumerated() { text += "\(word) \(sentence.tags[i]) \(tags[i])\n" }
            text += "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: path)
    }

    /// Dev predictions in conlleval's format, and the test split's scores and predictions when it has one.
    public func finish(outputDirectory: String) throws -> FinishReport {
        var report = FinishReport()
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        var splits = [("dev", evaluationSentences, evaluation)]
        if spec.splits["test"] != nil {
            let sentences = try setup.sentences("test")
            splits.append(("test", sentences, windower.windows(sentences)))
        }
        for (split, sentences, windows) in splits {
            let predicted = try predict(windows, sentences: sentences)
            let path = outputDirectory + "/predictions-\(split).txt"
            try Self.writePredictions(sentences, predicted, to: path)
            report.files.append((path, "predictions"))
            if split != "dev" { report.metrics[split] = Self.metrics(gold: sentences.map(\.tags), predicted: predicted) }
        }
        return report
    }

    public func export(to directory: String) throws {
        let head = HuggingFaceExport.Head(
            architecture: Self.architecture,
            config: ["id2label": Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0), $1) }),
                     "label2id": Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })],
            isHeadParameter: TokenClassifier.isHeadParameter)
        try HuggingFaceExport.write(to: directory, baseModel: checkpoint, tokenizer: tokenizer, parameters: model.parameters, head: head)
    }

    /// The chosen windows, padded on the right, and their token labels (`ignored` on padding).
    package static func batch(_ windows: [TokenWindow], _ indices: ArraySlice<Int>, padId: Int32,
                      length: Int? = nil) -> (EncoderBatch, [Int32]) {
        let batch = EncoderBatch(padding: indices.map { windows[$0].ids }, padId: padId, length: length)
        var tokenLabels = [Int32](repeating: TokenClassifier.ignored, count: batch.tokenCount)
        for (row, i) in indices.enumerated() {
            for (t, label) in windows[i].labels.enumerated() { tokenLabels[row * batch.sequenceLength + t] = label }
        }
        return (batch, tokenLabels)
    }
}

/// Turns tagged sentences into encoder windows with aligned labels (a sentence without tags, read for
/// prediction, gets none).
package struct Windower {
    let tokenizer: Tokenizer
    let labels: [String]
    let maxLength: Int
    let labelAllSubtokens: Bool

    package init(tokenizer: Tokenizer, labels: [String], maxLength: Int, labelAllSubtokens: Bool) {
        (self.tokenizer, self.labels, self.maxLength, self.labelAllSubtokens) = (tokenizer, labels, maxLength, labelAllSubtokens)
    }

    package func windows(_ sentences: [TaggedSentence]) -> [TokenWindow] {
        let labelIds = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, Int32($0)) })
        let budget = maxLength - tokenizer.postProcessor.addedTokenCount(pair: false)
        var windows: [TokenWindow] = []
        for (s, sentence) in sentences.enumerated() {
            // Each word's sub-tokens, cut to the budget so that even a very long word fits a window.
            let pieces = tokenizer.tokenize(words: sentence.words).map { Array($0.prefix(budget)) }
            var first = 0
            while first < pieces.count {
                var last = first, used = 0
                while last < pieces.count && used + pieces[last].count <= budget {
                    used += pieces[last].count
                    last += 1
                }
                var tokens: [Token] = [], tokenLabels: [Int32] = []
                var wordTokens: [(word: Int, token: Int)] = []
                for w in first..<last where !pieces[w].isEmpty {
                    wordTokens.append((w, tokens.count))
                    tokens += pieces[w]
                    guard sentence.tags.indices.contains(w) else {  // prediction input: words without tags
                        tokenLabels += Array(repeating: TokenClassifier.ignored, count: pieces[w].count)
                        continue
                    }
                    let tag = sentence.tags[w]
                    for k in pieces[w].indices {
                        if k == 0 {
                            tokenLabels.append(labelIds[tag]!)
                        } else if labelAllSubtokens {
                            let inside = tag.hasPrefix("B-") ? "I-" + tag.dropFirst(2) : tag
                            tokenLabels.append(labelIds[inside] ?? labelIds[tag]!)
                        } else {
                            tokenLabels.append(TokenClassifier.ignored)
                        }
                    }
                }
                // The tokenizer's special tokens around the window ([CLS] ... [SEP] for BERT), labelled ignored.
                let e = tokenizer.encode(tokens, nil)
                let lead = e.sequenceIds.firstIndex(of: 0) ?? 0
                var labels = tokenLabels.makeIterator()
                let windowLabels = e.sequenceIds.map { $0 == 0 ? labels.next()! : TokenClassifier.ignored }
                wordTokens = wordTokens.map { ($0.word, $0.token + lead) }
                let ids = e.ids
                windows.append(TokenWindow(ids: ids, labels: windowLabels, sentence: s, wordTokens: wordTokens))
                first = last
            }
        }
        return windows
    }
}

extension Hyperparameter where Value == Bool {
    /// Token classification: put each word's label on every sub-token, not only the first.
    public static var labelAllSubtokens: Self {
        .init("label_all_subtokens", default: false, help: "Token classification: label every sub-token of a word, not only the first (B- becomes I- after the first).")
    }
}
