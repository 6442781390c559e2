import Foundation
import Testing
import BertKit

/// The typed inference API (`FineTunedModel`, `SentenceEncoder`): the values `finetune predict` writes, for every
/// head; sentence embeddings equal to sentence-transformers'; safe to call from many threads at once.
struct InferenceAPITests {
    nonisolated(unsafe) static let expected: [String: Any] = {
        let data = FileManager.default.contents(atPath: Fixture.path("sentence-embeddings.json"))!
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    /// `predict`'s output lines for a pipelines fixture, as JSON objects.
    func predictLines(_ model: String, _ input: String, configure: (inout PredictionRequest) -> Void = { _ in }) throws -> [String] {
        let output = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: output) }
        var request = try PredictionRequest(model: Fixture.path("pipelines/" + model), input: Fixture.path("pipelines/" + input), output: output)
        configure(&request)
        _ = try request.setup.plugin().predict(request)
        return try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func records(_ input: String) throws -> [[String: String]] {
        try String(contentsOfFile: Fixture.path("pipelines/" + input), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: String]
        }
    }

    /// The same JSON text as a line of `predict`: keys sorted, as `predict` writes them.
    func line(_ object: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    @Test func classificationGivesWhatPredictWrites() throws {
        let model = try FineTunedModel(folder: Fixture.path("pipelines/text-classifier"))
        #expect(model.head == .textClassification && model.labels == ["negative", "neutral", "positive"])
        for input in ["texts.jsonl", "pairs.jsonl"] {
            let inputs = try records(input).map { TextInput($0["text"]!, pair: $0["text_pair"]) }
            let results = try model.classify(inputs)
            let lines = results.map { r in
                line(["label": r.label, "score": r.score, "scores": Dictionary(uniqueKeysWithValues: r.scores.map { ($0.label, $0.score) })])
            }
            #expect(lines == (try predictLines("text-classifier", input)), "\(input)")
        }
        // One text at a time gives the same as a batch (batches by length only group the work).
        let one = try model.classify("John Smith lives in New York.")
        #expect(one == (try model.classify([TextInput("John Smith lives in New York.")]))[0])
    }

    @Test func entitiesAnswersAndFillersGiveWhatPredictWrites() throws {
        var options = Hyperparameters()
        options[TokenClassificationTask.PredictionOption.aggregation] = .average
        let ner = try FineTunedModel(folder: Fixture.path("pipelines/token-classifier"), options: options)
        let texts = try records("texts.jsonl").map { $0["text"]! }
        let entities = try ner.entities(in: texts).map { found in
            line(["entities": found.map { ["entity_group": $0.group, "score": $0.score, "word": $0.word, "start": $0.start, "end": $0.end, "text": $0.text] }])
        }
        #expect(entities == (try predictLines("token-classifier", "texts.jsonl") {
            $0.setup.options[TokenClassificationTask.PredictionOption.aggregation] = .average
        }))

        options = Hyperparameters()
        options[SpanQATask.PredictionOption.topK] = 3
        let qa = try FineTunedModel(folder: Fixture.path("pipelines/question-answering"), options: options)
        let questions = try records("questions.jsonl").map { Question($0["question"]!, context: $0["context"]!) }
        let answers = try qa.answer(questions).map { ranked in
            var object: [String: Any] = ["answer": ranked[0].text, "score": ranked[0].score, "start": ranked[0].start, "end": ranked[0].end]
            object["answers"] = ranked.map { ["answer": $0.text, "score": $0.score, "start": $0.start, "end": $0.end] }
            return line(object)
        }
        #expect(answers == (try predictLines("question-answering", "questions.jsonl") { $0.setup.options[SpanQATask.PredictionOption.topK] = 3 }))

        let mlm = try FineTunedModel(folder: Fixture.path("pipelines/masked-lm"), precision: .int8)
        let fills = try mlm.fillMask(try records("masked.jsonl").map { $0["text"]! }).map { masks in
            line(["masks": masks.map { $0.map { ["token": $0.tokenId, "token_str": $0.token, "score": $0.score] } }])
        }
        #expect(fills == (try predictLines("masked-lm", "masked.jsonl") { $0.setup.options[PredictionOptions.precision] = .int8 }))
    }

    @Test func aModelRefusesWhatItsHeadDoesNotDoAndOptionsOfOtherHeads() throws {
        let model = try FineTunedModel(folder: Fixture.path("pipelines/text-classifier"))
        #expect(throws: WrongHead.self) { try model.entities(in: "John Smith") }
        var options = Hyperparameters()
        options[SpanQATask.PredictionOption.topK] = 3
        let error = #expect(throws: (any Error).self) { try FineTunedModel(folder: Fixture.path("pipelines/text-classifier"), options: options) }
        #expect("\(error!)".contains("top_k is not an option of"), "\(error!)")
        #expect(throws: (any Error).self) { try FineTunedModel(folder: Fixture.path("tiny-bert")) }
    }

    /// Many threads at once each get their own text's answer, the one a lone call gives.
    @Test func callsFromManyThreadsGetTheirOwnAnswers() async throws {
        let model = try FineTunedModel(folder: Fixture.path("pipelines/text-classifier"))
        let texts = try records("texts.jsonl").map { $0["text"]! } + records("pairs.jsonl").map { $0["text"]! }
        let alone = try texts.map { try model.classify($0) }
        let together = try await withThrowingTaskGroup(of: (Int, TextClassification).self) { group in
            for round in 0..<8 {
                for (i, text) in texts.enumerated() { group.addTask { (i, try model.classify(text)) } }
                _ = round
            }
            return try await group.reduce(into: [(Int, TextClassification)]()) { $0.append($1) }
        }
        #expect(together.count == 8 * texts.count)
        for (i, result) in together { #expect(result == alone[i]) }
    }

    @Test(arguments: ["all-MiniLM-L6-v2", "tiny-sentence-encoder"])
    func sentenceEmbeddingsEqualSentenceTransformers(_ name: String) throws {
        let folder = name == "all-MiniLM-L6-v2" ? Fixture.miniLMDirectory : Fixture.path(name)
        let encoder = try SentenceEncoder(folder: folder)
        let texts = Self.expected["texts"] as! [String]
        let reference = Self.expected[name] as! [[Double]]
        if name == "all-MiniLM-L6-v2" {
            #expect(encoder.pooling == [.mean] && encoder.normalize && encoder.maxLength == 256 && encoder.dimension == 384)
        } else {
            #expect(encoder.pooling == [.cls, .max, .meanSqrtLength] && !encoder.normalize && encoder.dimension == 96)
        }
        let embeddings = try encoder.embed(texts)
        for (i, (ours, theirs)) in zip(embeddings, reference).enumerated() {
            #expect(ours.count == theirs.count)
            let worst = zip(ours, theirs).map { abs(Double($0) - $1) }.max()!
            #expect(worst < 2e-6, "\(name), text \(i): largest difference \(worst)")
        }
    }
}

/// The article "Using BertKit in your Swift program" shows LibraryExamples.swift's functions as they are compiled,
/// and they do what it says.
@Suite struct LibraryExampleTests {
    @Test func theArticleShowsEachExampleAsItIsCompiled() throws {
        let source = try String(contentsOfFile: Fixture.repositoryRoot + "/Tests/BertKitTests/LibraryExamples.swift", encoding: .utf8)
        let article = try String(contentsOfFile: Fixture.repositoryRoot + "/Sources/BertKit/BertKit.docc/UsingBertKit.md", encoding: .utf8)
        let functions = source.components(separatedBy: "\n\n").filter { $0.hasPrefix("///") }
        #expect(functions.count == 3)
        for function in functions {
            let code = function.split(separator: "\n").drop { $0.hasPrefix("///") }.joined(separator: "\n")
            #expect(article.contains(code), "the article differs from LibraryExamples.swift at \(code.prefix(60))")
        }
    }

    @Test func fineTuneInCodeThenClassifyAndEmbed() throws {
        let directory = NSTemporaryDirectory() + "bertkit-library-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let best = try fineTuneParaphrases(encoder: Fixture.path("tiny-bert"), data: Fixture.path("tasks/data"),
                                           train: "mrpc-train-64.tsv", dev: "mrpc-dev-32.tsv", output: directory)
        let database = try SQLiteDatabase(path: directory + "/results.db")
        let run = try database.query("SELECT task, status FROM runs")
        #expect(run.count == 1 && run[0]["task"]?.description == "paraphrase" && run[0]["status"]?.description == "completed")
        let params = try database.query("SELECT key, value FROM params WHERE key IN ('learning_rate', 'max_steps') ORDER BY key")
        #expect(params.map { $0["value"]!.description } == ["0.001", "6"])

        let results = try classifyParaphrases(model: best)
        #expect(results.count == 2 && results.allSatisfy { ["different", "paraphrase"].contains($0.label) })
        #expect(results.allSatisfy { abs($0.scores.map(\.score).reduce(0, +) - 1) < 1e-9 })

        let close = try similarity("A man is eating food.", "A man is eating pasta.", encoder: Fixture.miniLMDirectory)
        let far = try similarity("A man is eating food.", "The new movie is awesome!", encoder: Fixture.miniLMDirectory)
        #expect(close > 0.6 && far < 0.2 && close > far, "\(close) \(far)")
    }
}
