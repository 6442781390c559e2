import Foundation

/// The pre-training plugin: continues BERT's masked-LM and next-sentence objectives on a plain-text corpus, so
/// that a checkpoint adapts to a domain before it is fine-tuned.
///
/// Training pairs are packed once from the corpus (`SegmentPairBuilder`); masks are drawn when a pair enters a
/// batch, afresh each time it is seen (dynamic masking) or once for good, from the seed, the pair and the round
/// alone, so a rerun is identical. The held-out pairs are masked once, so every evaluation scores the same
/// predictions.
public final class PreTrainingTask: TaskPlugin {
    public typealias Split = CorpusLayout
    public static let name = "pretraining"
    public static let architecture = "BertForPreTraining"
    public static let metrics: Set<String> = ["mlm_accuracy", "mlm_loss", "perplexity", "nsp_accuracy", "nsp_loss"]
    public static var hyperparameters: [HyperparameterDeclaration] {
        [Hyperparameter.mlmProbability.declaration, Hyperparameter.maxPredictions.declaration,
         Hyperparameter.shortSequenceProbability.declaration, Hyperparameter.nextSentencePrediction.declaration,
         Hyperparameter.wholeWordMasking.declaration, Hyperparameter.dynamicMasking.declaration]
    }

    /// A held-out pair with its fixed mask.
    public struct HeldOutExample: Sendable {
        public let pair: SegmentPair
        public let masked: MaskedSequence
    }

    public let spec: TaskSpec
    public let checkpoint: BertCheckpoint
    public let tokenizer: Tokenizer
    public let model: PreTrainingModel
    public let loadReport: LoadReport
    /// Train next-sentence prediction beside masked LM.
    public let nextSentencePrediction: Bool
    /// Draw a new mask each time a pair is seen.
    public let dynamicMasking: Bool
    public let masker: Masker
    public let training: [SegmentPair]
    public let evaluation: [HeldOutExample]
    /// Corpus lines and documents that were skipped, with file and line.
    public let problems: [DataError]
    /// The loop its evaluation runs in: the evaluation batch, shared among the run's processes.
    public let evaluationLoop: EvaluationLoop
    private let seed: UInt64
    private let documentCounts: (training: Int, evaluation: Int)
    /// How many times each training pair has been masked so far: the round of its next mask.
    private var rounds: [Int]

    public var parameters: ParameterStore { model.parameters }
    public var mainMetric: String { spec.mainMetric }
    public var evaluationSize: Int? { evaluation.count }
    public var trainingLengths: [Int] { training.map(\.ids.count) }
    public var dataWarnings: [DataError] { problems }
    public var dataSummary: String {
        let notNext = training.filter(\.isRandomNext).count
        var summary = "\(training.count) training pairs from \(documentCounts.training) documents"
            + (nextSentencePrediction ? " (\(notNext) NotNext)" : "")
            + ", \(evaluation.count) held-out pairs from \(documentCounts.evaluation)"
        if !problems.isEmpty { summary += "; \(problems.count) corpus problem(s) skipped" }
        return summary
    }

    public init(_ setup: TaskSetup) throws {
        let h = setup.hyperparameters
        let family = setup.checkpoint.config.family
        if h[.nextSentencePrediction] && !family.hasNextSentencePrediction {
            throw UsageError("next_sentence_prediction: \(setup.checkpoint.directory) is \(family.rawValue), which has no next-sentence "
                + "head; set next_sentence_prediction false (masked LM alone, as it was pre-trained)")
        }
        if h[.wholeWordMasking] && family != .bert {
            throw UsageError("whole_word_masking finds words by WordPiece's ## pieces; \(setup.checkpoint.directory) is \(family.rawValue)")
        }
        spec = setup.spec
        checkpoint = setup.checkpoint
        nextSentencePrediction = h[.nextSentencePrediction]
        dynamicMasking = h[.dynamicMasking]
        seed = h[.seed]
        evaluationLoop = setup.evaluationLoop
        tokenizer = try setup.tokenizer(minimumLength: 8)
        let (trainDocuments, heldOutDocuments, corpusProblems) = try Self.documents(setup)
        let tokenizer = self.tokenizer
        var problems = corpusProblems
        func tokenised(_ documents: [(document: TextCorpus.Document, file: String)]) -> [[[Int32]]] {
            documents.compactMap { d in
                let sentences = d.document.sentences.map { tokenizer.tokenize($0).map(\.id) }.filter { !$0.isEmpty }
                if sentences.isEmpty {
                    problems.append(DataError(file: d.file, line: d.document.line, "document has no tokens; skipped"))
                    return nil
                }
                return sentences
            }
        }
        let trainTokens = tokenised(trainDocuments), heldOutTokens = tokenised(heldOutDocuments)
        guard trainTokens.count >= 2, !heldOutTokens.isEmpty else {
            throw DataError(file: setup.data.textFile ?? setup.data.trainFile ?? spec.path,
                            "pre-training needs at least 2 training documents and 1 held-out document; found \(trainTokens.count) and \(heldOutTokens.count)")
        }
        self.problems = problems
        documentCounts = (trainTokens.count, heldOutTokens.count)

        var builder = SegmentPairBuilder(maxLength: h[.maxLength], template: tokenizer.postProcessor)
        builder.shortSequenceProbability = h[.shortSequenceProbability]
        builder.nextSentencePrediction = nextSentencePrediction
        var masker = try Masker(tokenizer: tokenizer)
        masker.probability = h[.mlmProbability]
        masker.maxPredictions = h[.maxPredictions]
        masker.wholeWord = h[.wholeWordMasking]
        self.masker = masker
        training = builder.pairs(from: trainTokens, seed: seed)
        rounds = [Int](repeating: 0, count: training.count)
        let heldOutSeed = seed ^ 0x4845_4C44_4F55_5400  // a stream of its own, apart from training's
        evaluation = builder.pairs(from: heldOutTokens, seed: heldOutSeed).enumerated().map { i, pair in
            var random = SeededRandom(seed: heldOutSeed, stream: UInt64(i))
            return HeldOutExample(pair: pair, masked: masker.mask(pair.ids, random: &random))
        }
        model = PreTrainingModel(config: checkpoint.config, context: try setup.buildContext(maxLength: h[.maxLength]),
                                 maxPredictions: setup.maxBatch * h[.maxPredictions], nextSentencePrediction: nextSentencePrediction)
        loadReport = try checkpoint.loadWeights(into: model.parameters, mayBeNew: PreTrainingModel.isHeadParameter, seed: seed)
    }

    /// The training and held-out documents, each with the file it came from: `--text` (its last 5 % of
    /// documents held out, or `--eval-file` as the held-out corpus), else the task's splits.
    static func documents(_ setup: TaskSetup) throws
        -> (training: [(document: TextCorpus.Document, file: String)], heldOut: [(document: TextCorpus.Document, file: String)], problems: [DataError])
    {
        var problems: [DataError] = []
        var corpora: [String: TextCorpus] = [:]
        func read(_ path: String) throws -> [(document: TextCorpus.Document, file: String)] {
            if corpora[path] == nil {
                let corpus = try TextCorpus(path: path)
                corpora[path] = corpus
                problems += corpus.problems
            }
            return corpora[path]!.documents.map { ($0, path) }
        }
        func split(_ name: String) throws -> [(document: TextCorpus.Document, file: String)] {
            let (layout, file, isReplaced) = try setup.split(name, as: CorpusLayout.self)
            let documents = try read(file)
            guard let range = layout.documents, !isReplaced else { return documents }
            guard range.upperBound <= documents.count else {
                throw DataError(file: setup.spec.path, "split '\(name)': documents must be [first, end) within the corpus's \(documents.count), found [\(range.lowerBound), \(range.upperBound)]")
            }
            return Array(documents[range])
        }
        if let text = setup.data.textFile {
            let all = try read(text)
            if let evalFile = setup.data.evalFile { return (all, try read(evalFile), problems) }
            let heldOut = max(1, all.count / 20)
            return (Array(all.dropLast(heldOut)), Array(all.suffix(heldOut)), problems)
        }
        return (try split("train"), try split("dev"), problems)
    }

    /// How many masks each training pair has had: the round, and so the mask, of its next one.
    public var trainingState: Data? { try? JSONEncoder().encode(rounds) }

    public func restoreTrainingState(_ state: Data) throws {
        guard let rounds = try? JSONDecoder().decode([Int].self, from: state), rounds.count == training.count else {
            throw DataError(file: spec.path, "the checkpoint's masking rounds are not for these \(training.count) training pairs")
        }
        self.rounds = rounds
    }

    public func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double {
        // Every process masks the whole batch: the masked positions are the MLM loss's denominator, and the
        // masking rounds stay the same on every process (they are saved in checkpoints).
        let masked = share.batch.map { i in
            let round = dynamicMasking ? rounds[i] : 0
            rounds[i] += 1
            var random = SeededRandom(seed: seed, stream: UInt64(round) << 32 | UInt64(i))
            return masker.mask(training[i].ids, random: &random)
        }
        let mine = Array(masked[share.positions]), pairs = share.examples.map { training[$0] }
        forward(mine, pairs, dropout: dropout, length: share.paddedLength { training[$0].ids.count })
        let loss = model.loss(maskedTokens: mine.flatMap(\.labels), isRandomNext: pairs.map(\.isRandomNext), scale: gradientScale,
                              batch: (masked.reduce(0) { $0 + $1.labels.count }, share.batch.count))
        model.backward()
        return loss.mlm + (nextSentencePrediction ? loss.nsp : 0)
    }

    /// Runs the model on masked pairs, padded to `length` (when these pairs are a share of a larger batch, as
    /// `BatchShare` says) or to the longest of them.
    private func forward(_ masked: [MaskedSequence], _ pairs: [SegmentPair], dropout: DropoutMode, length: Int? = nil) {
        let batch = EncoderBatch(padding: masked.map(\.ids), typeIds: pairs.map(\.typeIds), padId: tokenizer.padId,
                                 length: length)
        let T = batch.sequenceLength
        model.forward(batch, maskedPositions: masked.indices.flatMap { b in masked[b].positions.map { b * T + $0 } }, dropout: dropout)
    }

    /// Masked-LM loss, accuracy and perplexity over every held-out prediction; NSP loss and accuracy over the
    /// held-out pairs (when NSP is trained).
    public func evaluate() throws -> [String: Double] {
        // Each pair's masked-LM loss summed over its masked positions, their count, how many are predicted right,
        // its NSP loss and whether NSP is right.
        let outputs = try evaluationLoop.outputs(lengths: evaluation.map(\.pair.ids.count)) { batch in
            let chosen = batch.map { evaluation[$0] }
            forward(chosen.map(\.masked), chosen.map(\.pair), dropout: .evaluation)
            var first = 0
            return chosen.enumerated().map { b, example in
                let labels = example.masked.labels, rows = first..<(first + labels.count)
                first += labels.count
                let loss = model.losses(sequence: b, predictions: rows, maskedTokens: labels, isRandomNext: example.pair.isRandomNext)
                let correct = zip(rows, labels).filter { model.predictedToken($0) == $1 }.count
                return [loss.mlm, Double(labels.count), Double(correct), loss.nsp,
                        model.predictsRandomNext(b) == example.pair.isRandomNext ? 1 : 0]
            }
        }
        var mlmLoss = 0.0, nspLoss = 0.0
        var predictions = 0, correct = 0, nspCorrect = 0
        for o in outputs {
            mlmLoss += o[0]
            predictions += Int(o[1])
            correct += Int(o[2])
            nspLoss += o[3]
            nspCorrect += Int(o[4])
        }
        let meanLoss = mlmLoss / Double(max(1, predictions))
        var metrics = ["mlm_loss": meanLoss, "mlm_accuracy": Double(correct) / Double(max(1, predictions)),
                       "perplexity": Foundation.exp(meanLoss)]
        if nextSentencePrediction {
            metrics["nsp_loss"] = nspLoss / Double(max(1, evaluation.count))
            metrics["nsp_accuracy"] = Double(nspCorrect) / Double(max(1, evaluation.count))
        }
        return metrics
    }

    /// Writes the examples of the run, one JSON object per line, so that another implementation can train on
    /// the same pairs and score the same held-out masks (scripts/reference/reference_pretraining.py does):
    /// `pairs-train.jsonl` (`input_ids`, `token_type_ids`, `next_sentence_label`: 1 for NotNext) and
    /// `masked-heldout.jsonl` (the same, with the masked `input_ids`, `masked_positions` and `masked_labels`).
    public func finish(outputDirectory: String) throws -> FinishReport {
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        func jsonLines(_ objects: [[String: Any]]) throws -> Data {
            var data = Data()
            for object in objects {
                data += try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                data += Data("\n".utf8)
            }
            return data
        }
        let pairs = outputDirectory + "/pairs-train.jsonl", heldOut = outputDirectory + "/masked-heldout.jsonl"
        try AtomicFile.write(try jsonLines(training.map { p in
            ["input_ids": p.ids, "token_type_ids": p.typeIds, "next_sentence_label": p.isRandomNext ? 1 : 0]
        }), to: pairs)
        try AtomicFile.write(try jsonLines(evaluation.map { e in
            ["input_ids": e.masked.ids, "token_type_ids": e.pair.typeIds, "next_sentence_label": e.pair.isRandomNext ? 1 : 0,
             "masked_positions": e.masked.positions, "masked_labels": e.masked.labels]
        }), to: heldOut)
        var report = FinishReport()
        report.files = [(pairs, "examples"), (heldOut, "examples")]
        return report
    }

    public func export(to directory: String) throws {
        try HuggingFaceExport.write(to: directory, baseModel: checkpoint, tokenizer: tokenizer, parameters: model.parameters,
                                    head: .init(architecture: checkpoint.config.family.hasNextSentencePrediction ? Self.architecture
                                                    : "BertForMaskedLM", config: [:],
                                                isHeadParameter: PreTrainingModel.isHeadParameter))
    }
}

/// How a split of a pre-training task is laid out: a plain-text corpus (one sentence per line, a blank line
/// between documents), of which the split takes the documents `[first, end)` (all when absent).
public struct CorpusLayout: TaskFileSection {
    public var documents: Range<Int>?

    public static var keys: Set<String> { ["documents"] }

    enum CodingKeys: String, CodingKey { case documents }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        documents = try c.decodeRangeIfPresent(forKey: .documents)
    }
}

extension Hyperparameter where Value == Double {
    public static var mlmProbability: Self {
        .init("mlm_probability", default: 0.15, help: "Pre-training: share of the tokens chosen for masked-LM prediction.",
              problem: { $0 > 0 && $0 < 1 ? nil : "must be in (0, 1)" })
    }
    public static var shortSequenceProbability: Self {
        .init("short_sequence_probability", default: 0.1, help: "Pre-training: probability of packing a pair shorter than the maximum length.",
              problem: { (0...1).contains($0) ? nil : "must be in [0, 1]" })
    }
}

extension Hyperparameter where Value == Int {
    public static var maxPredictions: Self {
        .init("max_predictions", default: 20, help: "Pre-training: at most this many masked-LM predictions per sequence.", problem: positive)
    }
}

extension Hyperparameter where Value == Bool {
    public static var nextSentencePrediction: Self {
        .init("next_sentence_prediction", default: true, help: "Pre-training: train next-sentence prediction too (false: masked LM alone).")
    }
    public static var wholeWordMasking: Self {
        .init("whole_word_masking", default: false, help: "Pre-training: mask whole words (a word's ## pieces together).")
    }
    public static var dynamicMasking: Self {
        .init("dynamic_masking", default: true, help: "Pre-training: new masks every epoch (false: one mask per sequence throughout).")
    }
}
