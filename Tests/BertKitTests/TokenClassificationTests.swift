import Foundation
import Testing
import BertKit

/// The token classification plugin: CoNLL reading, word-label alignment, windows, entity metrics, the head.
@Suite struct TokenClassificationTests {
    static let labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

    static func tokenizer() throws -> Tokenizer { try Tokenizer(directory: Fixture.path("tiny-bert")) }

    /// The fixture's tagger (transformers' weights on the tiny BERT) and its batch.
    static func fixtureTagger(_ golden: SafeTensorsFile, precision: Precision = .float32) throws -> (TokenClassifier, EncoderBatch) {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let batch = try EncoderBatch(fixture: golden)
        let model = TokenClassifier(config: checkpoint.config, labels: 5, context: BuildContext(for: batch, precision: precision))
        for p in model.parameters.parameters {
            try golden.readFloats("weight." + (TokenClassifier.isHeadParameter(p.name) ? p.name : "bert." + p.name), into: p.value)
        }
        return (model, batch)
    }

    @Test func readsSentencesSkippingDocumentStartsAndBlankLines() throws {
        let sentences = try CoNLLFile.read(path: Fixture.path("tasks/data/ner-train.txt"), tagColumn: 3, labels: Self.labels)
        #expect(sentences.count == 3)
        #expect(sentences[0].words == ["Alice", "met", "Bob", "in", "Paris", "."])
        #expect(sentences[0].tags == ["B-PER", "O", "B-PER", "O", "B-LOC", "O"])
        #expect(sentences[1].line == 10)
        #expect(sentences[2].words.last == "\u{200B}", "a token the normaliser removes is still a word")
    }

    @Test func convertsIOB1ToIOB2() throws {
        let sentences = try CoNLLFile.read(path: Fixture.path("tasks/data/ner-iob1.txt"), tagColumn: 3, scheme: .iob1, labels: Self.labels)
        #expect(sentences[0].tags == ["B-PER", "I-PER", "O", "B-PER", "I-PER", "B-PER", "O", "B-LOC"])
    }

    @Test func anUnknownTagNamesTheFileAndLine() throws {
        do {
            _ = try CoNLLFile.read(path: Fixture.path("tasks/data/ner-bad-tag.txt"), tagColumn: 3, labels: Self.labels)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("ner-bad-tag.txt:3: unknown tag 'B-PERSON'"))
        }
    }

    @Test func externalDataNeedsADataDirectoryAndSaysHowToGetIt() throws {
        let spec = try TaskSpec.load("conll2003", tasksDirectory: Fixture.repositoryRoot + "/Tasks")
        do {
            _ = try spec.file(of: "train", dataDirectory: "/nonexistent")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("/nonexistent/conll2003/train.txt: file not found") && "\(error)".contains("may not be redistributed"))
        }
    }

    struct SeqevalCase: Decodable {
        let gold: [[String]]
        let predicted: [[String]]
        let f1, precision, recall, accuracy: Double
        let per_type_f1: [String: Double]
    }

    @Test func entityScoresEqualSeqeval() throws {
        let cases = try JSONDecoder().decode([SeqevalCase].self, from: Data(contentsOf: URL(fileURLWithPath: Fixture.path("seqeval.json"))))
        for c in cases {
            let (overall, byType, accuracy) = EntityMetrics.score(gold: c.gold, predicted: c.predicted)
            #expect(abs(overall.f1 - c.f1) < 1e-12 && abs(overall.precision - c.precision) < 1e-12 && abs(overall.recall - c.recall) < 1e-12,
                    "\(c.gold) vs \(c.predicted)")
            #expect(abs(accuracy - c.accuracy) < 1e-12)
            for (type, f1) in c.per_type_f1 { #expect(abs((byType[type]?.f1 ?? 0) - f1) < 1e-12, "\(type)") }
        }
    }

    @Test func labelsGoOnFirstSubtokensOrOnAllWithBTurnedIntoI() throws {
        let tokenizer = try Self.tokenizer()
        let sentence = TaggedSentence(words: ["Paris", "is", "nice"], tags: ["B-LOC", "O", "O"], line: 1)
        let first = Windower(tokenizer: tokenizer, labels: Self.labels, maxLength: 40, labelAllSubtokens: false).windows([sentence])
        #expect(first.count == 1)
        #expect(first[0].ids.map { tokenizer.vocabulary.token($0) } == ["[CLS]", "p", "##a", "##r", "##i", "##s", "i", "##s", "n", "##i", "##c", "##e", "[SEP]"])
        let ignored = TokenClassifier.ignored
        #expect(first[0].labels == [ignored, 5, ignored, ignored, ignored, ignored, 0, ignored, 0, ignored, ignored, ignored, ignored])
        #expect(first[0].wordTokens.map(\.token) == [1, 6, 8])
        let all = Windower(tokenizer: tokenizer, labels: Self.labels, maxLength: 40, labelAllSubtokens: true).windows([sentence])
        #expect(all[0].labels == [ignored, 5, 6, 6, 6, 6, 0, 0, 0, 0, 0, 0, ignored])
    }

    @Test func longSentencesAreSplitIntoWindowsAndEveryWordIsPredicted() throws {
        let tokenizer = try Self.tokenizer()
        let words = (0..<30).map { ["alpha", "beta", "gamma", "delta"][$0 % 4] }
        let sentence = TaggedSentence(words: words + ["\u{200B}"], tags: Array(repeating: "O", count: 31), line: 1)
        let windows = Windower(tokenizer: tokenizer, labels: Self.labels, maxLength: 24, labelAllSubtokens: false).windows([sentence])
        #expect(windows.count > 1 && windows.allSatisfy { $0.ids.count <= 24 })
        #expect(windows.flatMap { $0.wordTokens.map(\.word) } == Array(0..<30), "each word in exactly one window; the empty word in none")

        let task = try Fixture.task(TokenClassificationTask.self, "tasks/ner-tiny.json") {
            $0[.maxLength] = 24
            $0[.batchSize] = 4
            $0[.seed] = 1
        }
        let predicted = try task.predict(windows, sentences: [sentence])
        #expect(predicted[0].count == 31 && predicted[0][30] == "O")
    }

    @Test func headLossAndGradientsMatchPyTorch() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-token-classifier.safetensors"))
        let (model, batch) = try Self.fixtureTagger(golden)
        model.forward(batch)
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: batch.tokenCount * 5))
        #expect(relativeError(logits, try golden.floats("logits")) < 1e-5)
        try expectLossAndGradientsOfTheFixture(model, golden, labels: try golden.integers("labels").map(Int32.init))
    }

    /// The loss of the last forward pass against `labels`, and the gradients of its backward pass, against
    /// transformers' in `golden`.
    private func expectLossAndGradientsOfTheFixture(_ model: TokenClassifier, _ golden: SafeTensorsFile, labels: [Int32]) throws {
        let loss = model.loss(labels)
        #expect(abs(loss - Double(try golden.floats("loss")[0])) < 1e-5)
        model.parameters.zeroGradients()
        model.backward()
        for p in model.parameters.parameters {
            let name = TokenClassifier.isHeadParameter(p.name) ? p.name : "bert." + p.name
            let error = try gradientError(p, golden, "grad." + name, exactlyZero: p.name.hasSuffix("attention.self.key.bias"))
            #expect(error < 1e-4, "gradient of \(p.name): relative error \(error)")
        }
    }

    /// The same with the last layer computing the labelled tokens alone, as training runs it.
    @Test func scoredTokensLossAndGradientsMatchPyTorch() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-token-classifier.safetensors"))
        let (model, batch) = try Self.fixtureTagger(golden)
        let labels = try golden.integers("labels").map(Int32.init)
        let scored = labels.indices.filter { labels[$0] != TokenClassifier.ignored }
        #expect(scored.count < batch.tokenCount / 2, "most tokens are not scored")
        model.forward(batch, scoring: { labels[$0] != TokenClassifier.ignored })
        let expected = try golden.floats("logits")
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: scored.count * 5))
        #expect(relativeError(logits, scored.flatMap { expected[($0 * 5)..<($0 * 5 + 5)] }) < 1e-5)
        #expect(scored.allSatisfy { model.prediction(token: $0) == argmaxIndex(expected[($0 * 5)..<($0 * 5 + 5)]) })
        try expectLossAndGradientsOfTheFixture(model, golden, labels: labels)
    }

    private func argmaxIndex(_ values: ArraySlice<Float>) -> Int {
        values.indices.max { values[$0] < values[$1] }! - values.startIndex
    }

    /// Scoring some tokens gives those tokens' logits, the loss and every gradient of a pass over every token,
    /// with dropout on (the same masks) and off, in each training precision, with one sequence scored nowhere.
    @Test(arguments: Precision.training, [false, true])
    func scoringSomeTokensGivesTheFullPassesResults(_ precision: Precision, training: Bool) throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-token-classifier.safetensors"))
        let (model, batch) = try Self.fixtureTagger(golden, precision: precision)
        // The fixture's labels, with the last sequence's taken away: it is scored nowhere.
        let T = batch.sequenceLength
        var labels = try golden.integers("labels").map(Int32.init)
        for t in (batch.tokenCount - T)..<batch.tokenCount { labels[t] = TokenClassifier.ignored }
        let scored = labels.indices.filter { labels[$0] != TokenClassifier.ignored }
        let dropout = training ? DropoutMode.training(seed: 5) : .evaluation

        func pass(scoringAll: Bool) -> PassResults {
            if scoringAll {
                model.forward(batch, dropout: dropout)
            } else {
                model.forward(batch, scoring: { labels[$0] != TokenClassifier.ignored }, dropout: dropout)
            }
            let rows = scoringAll ? Array(0..<batch.tokenCount) : Array(scored.indices)
            let logits = scored.indices.flatMap { i in
                Array(UnsafeBufferPointer(start: model.logits + rows[scoringAll ? scored[i] : i] * 5, count: 5))
            }
            return PassResults(logits: logits, loss: model.loss(labels), parameters: model.parameters, backward: model.backward)
        }
        let all = pass(scoringAll: true)
        let some = pass(scoringAll: false)
        expectSameResults(some, all, model.parameters, "\(precision) training \(training)")
        if training {
            model.forward(batch, scoring: { labels[$0] != TokenClassifier.ignored })
            let evaluation = Array(UnsafeBufferPointer(start: model.logits, count: scored.count * 5))
            #expect(relativeError(evaluation, some.logits) > 1e-3, "dropout was on")
        }
    }

    @Test func trainsEvaluatesWritesConllevalPredictionsAndExports() throws {
        let directory = NSTemporaryDirectory() + "bertkit-ner-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let task = try Fixture.task(TokenClassificationTask.self, "tasks/ner-tiny.json") {
            $0[.maxLength] = 24
            $0[.batchSize] = 2
            $0[.seed] = 1
        }
        #expect(task.evaluation.count > task.evaluationSentences.count, "the long dev sentence needs several windows")
        var h = Hyperparameters()
        h[.learningRate] = 1e-3
        h[.batchSize] = 2
        h[.maxSteps] = 4
        let result = try Trainer(task: task, hyperparameters: h, bestModelDirectory: directory + "/best").run()
        #expect(Set(result.finalMetrics.keys).isSuperset(of: ["f1", "precision", "recall", "accuracy", "f1_PER", "f1_LOC", "f1_ORG",
                                                             "f1_MISC", "precision_PER", "recall_PER"]))

        let report = try task.finish(outputDirectory: directory)
        let lines = try String(contentsOfFile: directory + "/predictions-dev.txt", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("Dave B-PER "))
        #expect(lines.filter { !$0.isEmpty }.count == 18 && lines.filter { !$0.isEmpty }.allSatisfy { $0.split(separator: " ").count == 3 })
        #expect(report.files.map(\.kind) == ["predictions"])

        let config = try BertCheckpoint(directory: directory + "/best").rawConfig()
        #expect(config["architectures"] as? [String] == ["BertForTokenClassification"])
        #expect((config["id2label"] as? [String: String])?["1"] == "B-PER")
        #expect(try !SafeTensorsFile(path: directory + "/best/model.safetensors").names.contains { $0.contains("pooler") })
    }
}
