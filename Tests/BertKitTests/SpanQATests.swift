import Foundation
import Testing
import BertKit

/// The span QA plugin: windows, answer extraction, SQuAD's official metrics, the head.
@Suite struct SpanQATests {
    static func tokenizer() throws -> Tokenizer { try Tokenizer(directory: Fixture.path("tiny-bert")) }

    static func example(_ context: String, answer: String, id: String = "x") -> SQuADExample {
        let start = context.unicodeScalars.distance(from: context.unicodeScalars.startIndex,
                                                    to: context.range(of: answer)!.lowerBound.samePosition(in: context.unicodeScalars)!)
        return SQuADExample(id: id, question: "q", context: context, answers: [.init(text: answer, start: start)],
                            isImpossible: false, article: 0)
    }

    struct MetricCase: Decodable { let prediction: String; let golds: [String]; let normalized: String; let exact_match: Double; let f1: Double }

    @Test func exactMatchAndF1EqualTheOfficialScript() throws {
        let cases = try JSONDecoder().decode([MetricCase].self, from: Data(contentsOf: URL(fileURLWithPath: Fixture.path("squad-metrics.json"))))
        for c in cases {
            #expect(SQuADMetrics.normalize(c.prediction) == c.normalized, "normalize(\(c.prediction.debugDescription))")
            #expect((c.golds.contains { SQuADMetrics.exactMatch(c.prediction, $0) } ? 1.0 : 0.0) == c.exact_match, "\(c.prediction)")
            #expect(abs((c.golds.map { SQuADMetrics.f1(c.prediction, $0) }.max() ?? 0) - c.f1) < 1e-12, "\(c.prediction)")
        }
        let examples = [Self.example("Denver Broncos won", answer: "Denver Broncos", id: "a"), Self.example("in Paris today", answer: "Paris", id: "b")]
        let scores = SQuADMetrics.evaluate(examples, predictions: ["a": "the Denver Broncos"])
        #expect(scores["exact_match"] == 50 && scores["f1"] == 50, "an unanswered question scores 0")
    }

    struct V2Fixture: Decodable {
        struct Case: Decodable { let id: String; let golds: [String]; let prediction: String }
        let cases: [Case]
        let predictions: [String: String]
        let per_question: [String: [String: Double]]
        let totals: [String: Double]
    }

    /// SQuAD 2.0 scoring, answerable and unanswerable questions mixed, against the official v2.0 algorithm.
    @Test func squadV2ScoresEqualTheOfficialScript() throws {
        let fixture = try JSONDecoder().decode(V2Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: Fixture.path("squad-v2-metrics.json"))))
        let examples = fixture.cases.map { c in
            SQuADExample(id: c.id, question: "q", context: "c", answers: c.golds.map { .init(text: $0, start: 0) },
                         isImpossible: c.golds.isEmpty, article: 0)
        }
        for example in examples {
            let scores = SQuADMetrics.evaluateV2([example], predictions: fixture.predictions)
            let expected = fixture.per_question[example.id]!
            #expect(Set(scores.keys) == Set(expected.keys), "\(example.id)")
            for (name, value) in expected { #expect(abs(scores[name]! - value) < 1e-9, "\(example.id) \(name)") }
        }
        let totals = SQuADMetrics.evaluateV2(examples, predictions: fixture.predictions)
        #expect(Set(totals.keys) == Set(fixture.totals.keys))
        for (name, value) in fixture.totals { #expect(abs(totals[name]! - value) < 1e-9, "\(name)") }
    }

    @Test func theArticleSplitOfTheShippedDevSet() throws {
        let spec = try TaskSpec.load("squad-articles", tasksDirectory: Fixture.repositoryRoot + "/Tasks")
        let train = try spec.questions("train"), dev = try spec.questions("dev")
        #expect(train.count == 8123 && dev.count == 2447)
        #expect(Set(train.map(\.context)).isDisjoint(with: dev.map(\.context)), "no paragraph in both")
        #expect(Set(train.map(\.article)) == Set(0..<36) && Set(dev.map(\.article)) == Set(36..<48))
    }

    @Test func aWrongAnswerStartNamesTheQuestion() throws {
        do {
            _ = try SQuADFile.read(path: Fixture.path("tasks/data/qa-bad-start.json"))
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("question q0: answer_start 3 does not point at \"north\""))
        }
    }

    /// Context tokens of the tiny vocabulary are single letters, so a word of n letters is n tokens.
    @Test func windowsOverlapByTheNamedAmountAndLabelTheAnswerWhereItFits() throws {
        let tokenizer = try Self.tokenizer()
        // 30 context tokens; question "q" is one token; max length 16 leaves 12 per window; overlap 4, step 8.
        let context = "abcde fghij klmno pqrst uvwxy zabcd"
        let windower = SpanWindower(tokenizer: tokenizer, maxLength: 16, windowOverlap: 4)
        func windows(_ answer: String) -> [SpanWindow] { windower.windows(of: Self.example(context, answer: answer), index: 0) }

        let w = windows("klmno")
        #expect(w.count == 4, "windows start at context tokens 0, 8, 16 and 24")
        #expect(w.allSatisfy { $0.ids.count <= 16 })
        let contextStart = 3  // [CLS] q [SEP]
        #expect(w[0].offsets[contextStart + 8] == w[1].offsets[contextStart], "consecutive windows share 4 tokens")
        #expect(w[0].offsets[contextStart + 11] == w[1].offsets[contextStart + 3])
        // "klmno" is context tokens 10-14: inside window 1 (8-19) only; window 0 (0-11) holds part of it.
        #expect((w[0].start, w[0].end) == (0, 0))
        #expect((w[1].start, w[1].end) == (contextStart + 2, contextStart + 6))
        #expect((w[2].start, w[2].end) == (0, 0))
        // "pqrst" (15-19) ends at the last token of window 1; it starts before window 2 (16-27), so only
        // window 1 holds it, at its edge.
        let edge = windows("pqrst")
        #expect((edge[1].start, edge[1].end) == (contextStart + 7, contextStart + 11))
        #expect((edge[2].start, edge[2].end) == (0, 0))
        // "ij" (8-9) lies in windows 0 and 1: both label it.
        let twice = windows("ij")
        #expect((twice[0].start, twice[0].end) == (contextStart + 8, contextStart + 9))
        #expect((twice[1].start, twice[1].end) == (contextStart + 0, contextStart + 1))
        // Every context token is the maximum-context token of exactly one window.
        let owned = w.flatMap { window in window.offsets.indices.filter { window.offsets[$0] != nil && window.isMaxContext[$0] }.map { window.offsets[$0]! } }
        #expect(owned.count == 30 && Set(owned.map(\.lowerBound)).count == 30)
    }

    @Test func extractionKeepsTheContextsOwnSpellingAndRespectsTheLimits() throws {
        let tokenizer = try Self.tokenizer()
        let example = Self.example("Ok Café Central, Wien!", answer: "Café Central")
        let windows = SpanWindower(tokenizer: tokenizer, maxLength: 40, windowOverlap: 8).windows(of: example, index: 0)
        #expect(windows.count == 1)
        let window = windows[0]
        let n = window.ids.count
        // Context token positions by character offset.
        func token(at character: Int) -> Int { window.offsets.firstIndex { $0?.contains(character) == true }! }
        var starts = [Float](repeating: 0, count: n), ends = [Float](repeating: 0, count: n)
        starts[token(at: 3)] = 5      // "Café" begins at character 3
        ends[token(at: 14)] = 5       // "Central" ends at character 14
        starts[0] = 20; ends[0] = 20  // [CLS] is never an answer here
        ends[token(at: 1)] = 9        // an end before the start is not a span
        let extractor = AnswerExtractor(bestSize: 20, maxAnswerTokens: 30)
        let (best, _) = extractor.candidates(context: example.context, windows: windows) { _ in (starts, ends) }
        #expect(best.first?.text == "Café Central")
        #expect(extractor.answer(best, nullScore: 40) == "Café Central", "SQuAD v1.1 has no null answer")
        let short = AnswerExtractor(bestSize: 20, maxAnswerTokens: 3)
        #expect(short.candidates(context: example.context, windows: windows) { _ in (starts, ends) }.best.first?.text != "Café Central",
                "spans longer than the limit are not answers")
        let nullable = AnswerExtractor(nullScoreThreshold: 0)
        #expect(nullable.answer(best, nullScore: 40) == "")
    }

    @Test func headLossAndGradientsMatchPyTorch() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-qa.safetensors"))
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let batch = try EncoderBatch(fixture: golden)
        let model = QuestionAnsweringModel(config: checkpoint.config, context: BuildContext(for: batch))
        for p in model.parameters.parameters {
            try golden.readFloats("weight." + (QuestionAnsweringModel.isHeadParameter(p.name) ? p.name : "bert." + p.name), into: p.value)
        }
        model.forward(batch)
        let T = batch.sequenceLength
        let starts = (0..<batch.batchSize).flatMap { b in (0..<T).map { model.startLogit(sequence: b, token: $0) } }
        let ends = (0..<batch.batchSize).flatMap { b in (0..<T).map { model.endLogit(sequence: b, token: $0) } }
        #expect(relativeError(starts, try golden.floats("start_logits")) < 1e-5)
        #expect(relativeError(ends, try golden.floats("end_logits")) < 1e-5)
        let loss = model.loss(starts: try golden.integers("start_positions"), ends: try golden.integers("end_positions"))
        #expect(abs(loss - Double(try golden.floats("loss")[0])) < 1e-5)
        model.parameters.zeroGradients()
        model.backward()
        for p in model.parameters.parameters {
            let name = QuestionAnsweringModel.isHeadParameter(p.name) ? p.name : "bert." + p.name
            let last = checkpoint.config.numHiddenLayers - 1
            let exactlyZero = p.name.hasSuffix("attention.self.key.bias") || p.name == "qa_outputs.bias"
                || p.name == "encoder.layer.\(last).output.LayerNorm.bias"
            let error = try gradientError(p, golden, "grad." + name, exactlyZero: exactlyZero)
            #expect(error < 1e-4, "gradient of \(p.name): relative error \(error)")
        }
    }

    @Test func trainsEvaluatesWritesOfficialPredictionsAndExports() throws {
        let directory = NSTemporaryDirectory() + "bertkit-qa-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spec = try TaskSpec.load(Fixture.path("tasks/qa-tiny.json"))
        var h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path)
        #expect(h[.maxLength] == 40 && h[.windowOverlap] == 8, "the task file's hyper-parameters apply")
        h[.batchSize] = 2
        h[.seed] = 1
        let task = try SpanQATask(TaskSetup(spec: spec, checkpoint: BertCheckpoint(directory: Fixture.path("tiny-bert")), hyperparameters: h))
        #expect(task.training.count > task.trainingExamples.count, "the contexts need several windows")
        h[.maxSteps] = 3
        let result = try Trainer(task: task, hyperparameters: h, bestModelDirectory: directory + "/best").run()
        #expect(result.finalMetrics.keys.sorted() == ["exact_match", "f1"])
        let report = try task.finish(outputDirectory: directory)
        let predictions = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/predictions-dev.json"))) as? [String: String]
        #expect(predictions?.keys.sorted() == ["q2", "q3"])
        // finish reuses the final evaluation's answers; they are what the model predicts now.
        #expect(try predictions == task.predict().answers)
        task.parameters.zeroGradients()
        _ = task.trainStep(BatchShare(whole: [0, 1][...]), dropout: .training(seed: 9), gradientScale: 1)
        Optimizer(parameters: task.parameters, weightDecay: 0, maxGradNorm: 1, settings: .init()).update(learningRate: 0.05)
        _ = try task.finish(outputDirectory: directory)
        let after = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/predictions-dev.json"))) as? [String: String]
        #expect(try after == task.predict().answers, "after a training step, finish predicts afresh")
        #expect(report.files.map(\.kind) == ["predictions", "nbest"])
        let config = try BertCheckpoint(directory: directory + "/best").rawConfig()
        #expect(config["architectures"] as? [String] == ["BertForQuestionAnswering"])
        #expect(try SafeTensorsFile(path: directory + "/best/model.safetensors").names.contains("qa_outputs.weight"))
    }
}
