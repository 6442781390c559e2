import BertKit
import Foundation
import Testing

/// `finetune predict` for every head against transformers' pipelines on the same tiny model folders: BERT's
/// (scripts/fixtures/make_pipeline_fixtures.py, in `pipelines/`) and RoBERTa's with its byte-level BPE tokenizer.json
/// (make_family_pipeline_fixtures.py, in `pipelines-roberta/`): the same entities at the same offsets, the same
/// answers and fillers, scores within 1e-4.
@Suite struct PredictionTests {
    nonisolated(unsafe) static let expectations: [String: [String: Any]] = Dictionary(uniqueKeysWithValues: ["pipelines", "pipelines-roberta"].map { root in
        let data = FileManager.default.contents(atPath: Fixture.path(root + "/expected.json"))!
        return (root, try! JSONSerialization.jsonObject(with: data) as! [String: Any])
    })
    static var expected: [String: Any] { expectations["pipelines"]! }

    /// Runs `predict` with the plugin the folder's architecture names; returns the output's JSON lines.
    func predict(_ model: String, _ input: String, root: String = "pipelines", _ configure: (inout PredictionRequest) -> Void = { _ in }) throws -> [[String: Any]] {
        let output = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: output) }
        var request = try PredictionRequest(model: Fixture.path(root + "/" + model), input: Fixture.path(root + "/" + input), output: output)
        configure(&request)
        let report = try request.setup.plugin().predict(request)
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(report.examples == lines.count)
        return lines.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    func close(_ a: Any?, _ b: Any?) -> Bool {
        guard let x = (a as? NSNumber)?.doubleValue, let y = (b as? NSNumber)?.doubleValue else { return false }
        return abs(x - y) <= 1e-4
    }

    /// A head's options are the common ones and those its plugin declares; another head's is refused by name.
    @Test func predictionOptionsAreDeclaredByTheirPlugin() throws {
        func message(_ arguments: [String], _ plugin: any TaskPlugin.Type) -> String {
            do { _ = try PredictionOptions.parse(arguments, for: plugin); return "no error" } catch { return "\(error)" }
        }
        let options = try PredictionOptions.parse(["--top-k", "3", "--allow-no-answer", "--batch-size=8"], for: SpanQATask.self)
        #expect(options[SpanQATask.PredictionOption.topK] == 3 && options[SpanQATask.PredictionOption.allowNoAnswer])
        #expect(options[PredictionOptions.batchSize] == 8 && options[PredictionOptions.maxLength] == nil)
        #expect(try PredictionOptions.parse([], for: PreTrainingTask.self)[PreTrainingTask.PredictionOption.topK] == 5, "fill-mask's own default")
        #expect(message(["--threshold", "0.3"], SpanQATask.self)
                == "--threshold is an option of multi-label-classification models, not of this span-qa model")
        #expect(message(["--top-k", "0"], SpanQATask.self) == "--top-k must be positive, found '0'")
        #expect(message(["--tpo-k", "3"], SpanQATask.self) == "unknown option '--tpo-k'; did you mean '--top-k'?")
        #expect(message(["--threshold", "1.5"], MultiLabelClassificationTask.self) == "--threshold must be in (0, 1), found '1.5'")
        #expect(message(["--precision", "int8"], SequenceClassificationTask.self) == "no error", "int8 is a prediction precision")
    }

    @Test(arguments: ["pipelines", "pipelines-roberta"], ["simple", "first", "average", "max"])
    func entitiesEqualTheTokenClassificationPipeline(root: String, aggregation: String) throws {
        let results = try predict("token-classifier", "texts.jsonl", root: root) {
            $0.setup.options[TokenClassificationTask.PredictionOption.aggregation] = EntityAggregation(rawValue: aggregation)!
            $0.setup.options[PredictionOptions.windowOverlap] = 8
        }
        let reference = (Self.expectations[root]!["token-classification"] as! [String: Any])[aggregation] as! [[[String: Any]]]
        let texts = try JSONLines.read(path: Fixture.path(root + "/texts.jsonl")).map { $0.object["text"] as! String }
        #expect(results.count == reference.count)
        for (i, (result, want)) in zip(results, reference).enumerated() {
            let got = result["entities"] as! [[String: Any]]
            #expect(got.count == want.count, "text \(i): \(got.count) entities, the pipeline found \(want.count)")
            for (g, w) in zip(got, want) {
                #expect(g["entity_group"] as? String == w["entity_group"] as? String && g["word"] as? String == w["word"] as? String
                        && g["start"] as? Int == w["start"] as? Int && g["end"] as? Int == w["end"] as? Int && close(g["score"], w["score"]),
                        "text \(i): \(g) against \(w)")
                let scalars = Array(texts[i].unicodeScalars), range = (g["start"] as! Int)..<(g["end"] as! Int)
                #expect(g["text"] as? String == String(String.UnicodeScalarView(scalars[range])))
            }
        }
    }

    func checkAnswers(_ results: [[String: Any]], _ reference: [[[String: Any]]]) {
        #expect(results.count == reference.count)
        for (i, (result, want)) in zip(results, reference).enumerated() {
            let got = result["answers"] as! [[String: Any]]
            #expect(got.count == want.count, "question \(i): \(got) against \(want)")
            for (g, w) in zip(got, want) {
                #expect(g["answer"] as? String == w["answer"] as? String && g["start"] as? Int == w["start"] as? Int
                        && g["end"] as? Int == w["end"] as? Int && close(g["score"], w["score"]), "question \(i): \(g) against \(w)")
            }
            #expect(result["answer"] as? String == got.first?["answer"] as? String && close(result["score"], got.first?["score"]))
        }
    }

    @Test func answersEqualTheQuestionAnsweringPipeline() throws {
        checkAnswers(try predict("question-answering", "questions.jsonl") { $0.setup.options[SpanQATask.PredictionOption.topK] = 3 },
                     Self.expected["question-answering"] as! [[[String: Any]]])
        checkAnswers(try predict("question-answering", "questions.jsonl") { $0.setup.options[SpanQATask.PredictionOption.topK] = 3; $0.setup.options[SpanQATask.PredictionOption.allowNoAnswer] = true },
                     Self.expected["question-answering-no-answer"] as! [[[String: Any]]])
    }

    @Test(arguments: [("pipelines", "masked-lm"), ("pipelines", "masked-lm-only"), ("pipelines-roberta", "masked-lm")])
    func fillersEqualTheFillMaskPipeline(root: String, model: String) throws {
        let results = try predict(model, "masked.jsonl", root: root)
        let reference = Self.expectations[root]!["fill-mask"] as! [[[[String: Any]]]]
        #expect(results.count == reference.count)
        for (i, (result, want)) in zip(results, reference).enumerated() {
            let masks = result["masks"] as! [[[String: Any]]]
            #expect(masks.count == want.count)
            for (got, w) in zip(masks, want) {
                #expect(got.map { $0["token"] as! Int } == w.map { $0["token"] as! Int }, "text \(i)")
                #expect(got.map { $0["token_str"] as! String } == w.map { $0["token_str"] as! String }, "text \(i)")
                #expect(zip(got, w).allSatisfy { close($0["score"], $1["score"]) }, "text \(i): \(got) against \(w)")
            }
        }
    }

    @Test(arguments: ["pipelines", "pipelines-roberta"])
    func probabilitiesEqualTheTextClassificationPipeline(root: String) throws {
        let results = try predict("text-classifier", "pairs.jsonl", root: root)
        let reference = Self.expectations[root]!["text-classification"] as! [[[String: Any]]]
        for (result, want) in zip(results, reference) {
            let scores = result["scores"] as! [String: Any]
            #expect(result["label"] as? String == want[0]["label"] as? String && close(result["score"], want[0]["score"]))
            #expect(scores.count == want.count && want.allSatisfy { close(scores[$0["label"] as! String], $0["score"]) }, "\(scores) against \(want)")
        }
    }

    @Test func bf16PredictsTheSameEntities() throws {
        let fp32 = try predict("token-classifier", "texts.jsonl") { $0.setup.options[PredictionOptions.windowOverlap] = 8 }
        let bf16 = try predict("token-classifier", "texts.jsonl") { $0.setup.options[PredictionOptions.windowOverlap] = 8; $0.setup.options[PredictionOptions.precision] = .bfloat16 }
        let same = zip(fp32, bf16).filter { ($0["entities"] as! [[String: Any]]).map { "\($0["start"]!)-\($0["end"]!)-\($0["entity_group"]!)" }
            == ($1["entities"] as! [[String: Any]]).map { "\($0["start"]!)-\($0["end"]!)-\($0["entity_group"]!)" } }.count
        #expect(same >= fp32.count - 1, "bf16 agrees with fp32 on \(same) of \(fp32.count) texts")
    }

    /// int8 products (dynamic quantisation) against fp32 on the same folders: the same answers, fillers and labels,
    /// nearly the same entities (a random tiny model has near-ties that 8 bits can tip).
    @Test func int8PredictsAsFP32Does() throws {
        func answers(_ precision: Precision) throws -> [String] {
            try predict("question-answering", "questions.jsonl") { $0.setup.options[PredictionOptions.precision] = precision }.map { $0["answer"] as! String }
        }
        #expect(try answers(.int8) == answers(.float32))
        func fillers(_ precision: Precision) throws -> [Int] {
            try predict("masked-lm", "masked.jsonl") { $0.setup.options[PredictionOptions.precision] = precision }.flatMap { ($0["masks"] as! [[[String: Any]]]).map { $0[0]["token"] as! Int } }
        }
        #expect(try fillers(.int8) == fillers(.float32))
        let (fp32, int8) = (try predict("text-classifier", "pairs.jsonl"), try predict("text-classifier", "pairs.jsonl") { $0.setup.options[PredictionOptions.precision] = .int8 })
        for (a, b) in zip(fp32, int8) {
            #expect(a["label"] as? String == b["label"] as? String && abs((a["score"] as! Double) - (b["score"] as! Double)) < 0.01)
        }
        func entities(_ precision: Precision) throws -> [Set<String>] {
            try predict("token-classifier", "texts.jsonl") { $0.setup.options[PredictionOptions.precision] = precision; $0.setup.options[PredictionOptions.windowOverlap] = 8 }.map {
                Set(($0["entities"] as! [[String: Any]]).map { "\($0["entity_group"]!) \($0["start"]!) \($0["end"]!)" })
            }
        }
        let (exact, quantised) = (try entities(.float32), try entities(.int8))
        let kept = zip(exact, quantised).map { $0.intersection($1).count }.reduce(0, +), total = exact.map(\.count).reduce(0, +)
        #expect(Double(kept) >= 0.95 * Double(total), "int8 keeps \(kept) of \(total) entities")
        #expect { try Hyperparameters().applying(arguments: ["--precision", "int8"]) } throws: { "\($0)".contains("prediction only") }
    }

    @Test func conllInputGetsWordPredictedLines() throws {
        let input = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).conll", output = input + ".out"
        defer { for path in [input, output] { try? FileManager.default.removeItem(atPath: path) } }
        try "-DOCSTART- -X- O O\n\nJohn\nSmith\nlives\n\nParis\n".write(toFile: input, atomically: true, encoding: .utf8)
        var request = try PredictionRequest(model: Fixture.path("pipelines/token-classifier"), input: input, output: output)
        request.format = .conll
        #expect(try TokenClassificationTask.predict(request).examples == 2)
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 7 && lines[3] == "" && lines[5] == "" && lines[6] == "")
        #expect(lines[0].hasPrefix("John ") && lines[4].hasPrefix("Paris "))
        let labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
        #expect(lines.filter { !$0.isEmpty }.allSatisfy { labels.contains(String($0.split(separator: " ")[1])) })
    }

    @Test func badRecordsNameTheirLine() throws {
        let input = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).jsonl", output = input + ".out"
        defer { for path in [input, output] { try? FileManager.default.removeItem(atPath: path) } }
        try "{\"question\": \"who?\", \"context\": \"John.\"}\n{\"question\": \"who?\"}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let request = try PredictionRequest(model: Fixture.path("pipelines/question-answering"), input: input, output: output)
        #expect { try SpanQATask.predict(request) } throws: { "\($0)".contains(input + ":2") && "\($0)".contains("\"context\"") }
        #expect(!FileManager.default.fileExists(atPath: output), "nothing half-written")

        try "{\"text\": \"no mask here\"}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let fill = try PredictionRequest(model: Fixture.path("pipelines/masked-lm"), input: input, output: output)
        #expect { try PreTrainingTask.predict(fill) } throws: { "\($0)".contains(input + ":1") && "\($0)".contains("[MASK]") }
    }
}
