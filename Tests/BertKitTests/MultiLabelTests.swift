import Foundation
import Testing
import BertKit

/// The multi-label plugin: its head against transformers' multi-label `BertForSequenceClassification`, its
/// metrics against scikit-learn's, and a run on real GoEmotions comments.
@Suite struct MultiLabelTests {
    @Test func headLossAndGradientsMatchPyTorch() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-multilabel.safetensors"))
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let batch = try EncoderBatch(fixture: golden)
        let model = SequenceClassifier(config: checkpoint.config, outputs: 5, context: BuildContext(for: batch))
        for p in model.parameters.parameters { try golden.readFloats("weight." + fixtureName(p.name), into: p.value) }
        model.forward(batch)
        #expect(relativeError(Array(UnsafeBufferPointer(start: model.logits, count: batch.batchSize * 5)), try golden.floats("logits")) < 1e-5)
        let multiHot = try golden.floats("labels")
        let targets = (0..<batch.batchSize).map { b in (0..<5).filter { multiHot[b * 5 + $0] == 1 } }
        #expect(targets[1].isEmpty, "a text may have no label")
        let loss = model.loss(multiLabel: targets)
        #expect(abs(loss - Double(try golden.floats("loss")[0])) < 1e-5)
        model.parameters.zeroGradients()
        model.backward()
        for p in model.parameters.parameters {
            let error = try gradientError(p, golden, "grad." + fixtureName(p.name), exactlyZero: p.name.hasSuffix("attention.self.key.bias"))
            #expect(error < 1e-4, "gradient of \(p.name): relative error \(error)")
        }
    }

    struct MetricsCase: Decodable {
        let labels: Int
        let gold, predicted: [[Int]]
        let micro_f1, macro_f1, micro_precision, micro_recall, subset_accuracy: Double
        let per_label_f1: [Double]
    }

    @Test func metricsEqualScikitLearn() throws {
        let cases = try JSONDecoder().decode([MetricsCase].self, from: Data(contentsOf: URL(fileURLWithPath: Fixture.path("multilabel-metrics.json"))))
        #expect(cases.count == 3)
        for c in cases {
            let s = MultiLabelMetrics.score(gold: c.gold.map(Set.init), predicted: c.predicted.map(Set.init), labels: c.labels)
            for (ours, theirs) in [(s.microF1, c.micro_f1), (s.macroF1, c.macro_f1), (s.microPrecision, c.micro_precision),
                                   (s.microRecall, c.micro_recall), (s.subsetAccuracy, c.subset_accuracy)] {
                #expect(abs(ours - theirs) < 1e-12, "\(c.labels) labels")
            }
            #expect(zip(s.perLabelF1, c.per_label_f1).allSatisfy { abs($0 - $1) < 1e-12 } && s.perLabelF1.count == c.per_label_f1.count)
        }
    }

    @Test func aBadLabelListNamesTheFileAndLine() throws {
        let spec = try TaskSpec.load(Fixture.path("tasks/goemotions-slice.json"))
        let layout = try spec.layout(of: "train", as: MultiLabelLayout.self)
        let path = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).tsv"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("fine\t27\tid1\nnot fine\t3,28\tid2\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError.self) { _ = try layout.examples(path: path, labels: spec.labels!) }
        do { _ = try layout.examples(path: path, labels: spec.labels!) } catch {
            #expect("\(error)" == "\(path):2: label '28' is not an index of the task's 28 labels")
        }
        let examples = try layout.examples(path: spec.file(of: "train"), labels: spec.labels!)
        #expect(examples.count == 64 && examples[0].2 == [27], "the first comment is neutral")
        #expect(examples.contains { $0.2.count > 1 }, "some comments have several emotions")
    }

    /// Trains the tiny model on real GoEmotions comments, tunes the threshold, exports a folder whose config
    /// says multi-label, and predicts with it: labels over the threshold and every probability.
    @Test func trainsTunesTheThresholdExportsAndPredicts() throws {
        let directory = NSTemporaryDirectory() + "bertkit-multilabel-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let task = try Fixture.task(MultiLabelClassificationTask.self, "tasks/goemotions-slice.json") {
            $0[.maxLength] = 40
            $0[.tuneThreshold] = true
        }
        var h = Hyperparameters()
        h[.learningRate] = 1e-3
        h[.batchSize] = 8
        h[.maxSteps] = 8
        h[.evalSteps] = 4
        let result = try Trainer(task: task, hyperparameters: h, bestModelDirectory: directory + "/best").run()
        let metrics = result.finalMetrics
        #expect(Set(metrics.keys).isSuperset(of: ["micro_f1", "macro_f1", "subset_accuracy", "threshold", "f1_neutral", "f1_joy"]))
        #expect((0.01...0.99).contains(metrics["threshold"]!) && task.threshold == metrics["threshold"]!)

        let config = try BertCheckpoint(directory: directory + "/best").rawConfig()
        #expect(config["problem_type"] as? String == "multi_label_classification")
        #expect((config["id2label"] as? [String: String])?["27"] == "neutral" && config["threshold"] as? Double != nil)

        var request = try PredictionRequest(model: directory + "/best", input: Fixture.path("tasks/data/goemotions-dev-32.tsv"),
                                            output: directory + "/predictions.tsv")
        request.task = task.spec
        request.split = "dev"
        request.setup.options[PredictionOptions.maxLength] = 40
        #expect(try request.setup.plugin() == MultiLabelClassificationTask.self, "a multi-label model is predicted by its own plugin")
        let report = try MultiLabelClassificationTask.predict(request)
        #expect(report.examples == 32)
        let lines = try String(contentsOfFile: directory + "/predictions.tsv", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 33 && lines[0].hasPrefix("index\tlabels\tadmiration\tamusement"))
        let fields = lines[1].split(separator: "\t", omittingEmptySubsequences: false)
        #expect(fields.count == 2 + 28 && fields.dropFirst(2).allSatisfy { Float($0).map { (0...1).contains($0) } == true })
    }
}
