import Foundation
import Testing
import BertKit

/// The runner end to end on the tiny model and real slices of MRPC and STS-B.
@Suite struct FineTuningTests {
    static func task(_ name: String = "mrpc-slice", seed: UInt64 = 1) throws -> SequenceClassificationTask {
        try Fixture.task(SequenceClassificationTask.self, "tasks/\(name).json") {
            $0[.maxLength] = 40
            $0[.batchSize] = 8
            $0[.evalBatchSize] = 16
            $0[.seed] = seed
        }
    }

    static func hyperparameters(seed: UInt64 = 1) -> Hyperparameters {
        var h = Hyperparameters()
        h[.learningRate] = 1e-3
        h[.batchSize] = 8
        h[.maxLength] = 40
        h[.maxSteps] = 6
        h[.evalSteps] = 3
        h[.gradientAccumulation] = 2
        h[.seed] = seed
        return h
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "bertkit-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func sameSeedGivesBitIdenticalRuns() throws {
        func train(seed: UInt64) throws -> ([Float], [String: Double]) {
            let task = try Self.task(seed: seed)
            let result = try Trainer(task: task, hyperparameters: Self.hyperparameters(seed: seed), bestModelDirectory: nil).run()
            #expect(result.steps == 6)
            return (Array(task.parameters.values), result.finalMetrics)
        }
        let (a, metricsA) = try train(seed: 1)
        let (b, metricsB) = try train(seed: 1)
        let (c, _) = try train(seed: 2)
        #expect(a == b, "a rerun with the same seed is bit-identical")
        #expect(metricsA == metricsB)
        #expect(a != c, "another seed trains differently")
    }

    @Test func trainingLowersTheLoss() throws {
        let task = try Self.task()
        let examples = ArraySlice(Array(0..<8))
        let before = task.trainStep(BatchShare(whole: examples), dropout: .evaluation, gradientScale: 1)
        var h = Self.hyperparameters()
        h[.maxSteps] = 12
        h[.warmupRatio] = 0
        _ = try Trainer(task: task, hyperparameters: h, bestModelDirectory: nil).run()
        #expect(task.trainStep(BatchShare(whole: examples), dropout: .evaluation, gradientScale: 1) < before)
    }

    @Test func exportReloadsWithTheSameLogitsAndHuggingFaceNames() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for name in ["mrpc-slice", "stsb-slice"] {
            let task = try Self.task(name)
            let export = directory + "/" + name
            _ = try Trainer(task: task, hyperparameters: Self.hyperparameters(), bestModelDirectory: export).run()
            // The best model was exported during training; export the final one over it.
            try task.export(to: export)

            let checkpoint = try BertCheckpoint(directory: export)
            let config = try checkpoint.rawConfig()
            #expect(config["architectures"] as? [String] == ["BertForSequenceClassification"])
            let names = try SafeTensorsFile(path: checkpoint.weightsPath).names
            #expect(names.contains("bert.encoder.layer.1.output.LayerNorm.weight") && names.contains("classifier.weight"))
            if name == "mrpc-slice" {
                #expect(config["problem_type"] as? String == "single_label_classification")
                #expect(try checkpoint.labelNames() == ["not_equivalent", "equivalent"], "the task file's labelNames")
                #expect((config["label2id"] as? [String: Int]) == ["not_equivalent": 0, "equivalent": 1])
            } else {
                #expect(config["problem_type"] as? String == "regression")
            }

            let batch = SequenceClassificationTask.batch(task.evaluation, ArraySlice(Array(0..<8)), padId: 0)
            task.model.forward(batch)
            let before = Array(UnsafeBufferPointer(start: task.model.logits, count: 8 * task.model.outputs))
            let reloaded = SequenceClassifier(config: checkpoint.config, outputs: task.model.outputs,
                                              context: BuildContext(maxBatch: 8, maxLength: 40))
            let report = try checkpoint.loadWeights(into: reloaded.parameters)
            #expect(report.initialised.isEmpty && report.ignored.isEmpty)
            reloaded.forward(batch)
            #expect(Array(UnsafeBufferPointer(start: reloaded.logits, count: 8 * task.model.outputs)) == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted().filter { $0.hasPrefix(".") }.isEmpty,
                    "no temporary folders are left behind")
        }
    }

    @Test func aFailingExportLeavesNothingUnderTheFinalName() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try ModelFolder.write(to: directory + "/model") { staging in
                try Data("partial".utf8).write(to: staging.appendingPathComponent("model.safetensors"))
                throw Boom()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test func aFileStreamedToDiskAppearsWholeOrNotAtAll() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        struct Boom: Error {}
        let path = directory + "/weights.bin"
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: path) { file in
                try [UInt8](repeating: 7, count: 1000).withUnsafeBytes { try file.write($0) }
                throw Boom()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "no partial or temporary file")
        try AtomicFile.write(to: path) { file in
            for chunk in 0..<3 { try [UInt8](repeating: UInt8(chunk), count: 1000).withUnsafeBytes { try file.write($0) } }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data((0..<3).flatMap { [UInt8](repeating: UInt8($0), count: 1000) }))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["weights.bin"])
    }

    /// A task whose micro-batches' losses and evaluations' scores follow a script, to check what the trainer
    /// does with them.
    final class ScriptedTask: TrainableTask {
        let parameters = ParameterStore([.init("w.weight", [4])])
        let trainingLengths = Array(repeating: 5, count: 16)
        let mainMetric = "accuracy"
        let loadReport = LoadReport()
        let dataSummary = "16 constant examples"
        var losses: [Double], scores: [Double]
        init(losses: [Double] = Array(repeating: 1, count: 100), scores: [Double] = Array(repeating: 0.5, count: 100)) {
            (self.losses, self.scores) = (losses, scores)
        }
        func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double { losses.removeFirst() }
        func evaluate() -> [String: Double] { ["accuracy": scores.removeFirst()] }
        func export(to directory: String) throws {}
    }

    @Test func earlyStoppingStopsAfterPatienceEvaluationsWithoutEnoughImprovement() throws {
        var h = Hyperparameters()
        h[.batchSize] = 4
        h[.maxSteps] = 20
        h[.evalSteps] = 1
        h[.earlyStoppingPatience] = 2
        h[.earlyStoppingThreshold] = 0.05
        // 0.6 improves on 0.5 by more than 0.05; 0.62 and 0.64 are new bests, but by less: the second of them stops.
        let result = try Trainer(task: ScriptedTask(scores: [0.5, 0.6, 0.62, 0.64] + Array(repeating: 0.9, count: 16)),
                                 hyperparameters: h, bestModelDirectory: nil).run()
        #expect(result.steps == 4 && result.bestStep == 4 && result.bestMetrics["accuracy"] == 0.64)
        #expect(result.stopReason == "early stopping: accuracy did not improve by more than 0.05 in 2 evaluations (best 0.6400 at step 4)")
        h[.earlyStoppingPatience] = nil
        let unstopped = try Trainer(task: ScriptedTask(scores: [0.5, 0.6, 0.62, 0.64] + Array(repeating: 0.9, count: 16)),
                                    hyperparameters: h, bestModelDirectory: nil).run()
        #expect(unstopped.steps == 20 && unstopped.stopReason == nil)
    }

    @Test func aNaNLossEndsTheRunWithItsStep() throws {
        var h = Hyperparameters()
        h[.batchSize] = 4
        do {
            _ = try Trainer(task: ScriptedTask(losses: [1, 1, .nan]), hyperparameters: h, bestModelDirectory: nil).run()
            Issue.record("expected a non-finite loss error")
        } catch let error as TrainingError {
            #expect(error.description.contains("became nan at step 3"))
        }
    }
}

/// Reading task data as it is, and refusing bad data with the file and line.
@Suite struct TaskDataTests {
    func error(_ file: String) throws -> String {
        let spec = try TaskSpec.load(Fixture.path("tasks/mrpc-slice.json"))
        do {
            _ = try spec.examples("train", file: Fixture.path("tasks/data/" + file))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func glueQuirksAreReadAsTheyAre() throws {
        let spec = try TaskSpec.load(Fixture.path("tasks/mrpc-slice.json"))
        let train = try spec.examples("train")
        #expect(train.count == 64)
        #expect(train[0].line == 2 && train[0].target == .label(1))
        #expect(train[0].textA.hasPrefix("Amrozi accused his brother"))
        let quirky = try spec.examples("train", file: Fixture.path("tasks/data/crlf-no-final-newline.tsv"))
        #expect(quirky.count == 2)
        #expect(quirky[1].textA == "\"Unbalanced quote." && quirky[1].textB == "No final newline")
        #expect(quirky[0].textB == "A second one.", "\\r of CRLF line ends is not part of the last field")
        let cola = try TaskSpec.load("cola", tasksDirectory: Fixture.repositoryRoot + "/Tasks")
        let colaDev = try cola.examples("dev")
        #expect(colaDev.count == 1043, "CoLA dev: no header, no final newline")
    }

    @Test func allShippedTasksLoadTheirData() throws {
        let expected = ["mrpc": (3668, 408), "sst2": (67349, 872), "cola": (8551, 1043), "stsb": (5749, 1500),
                        "rte": (2490, 277), "wnli": (635, 71)]
        for (name, counts) in expected {
            let spec = try TaskSpec.load(name, tasksDirectory: Fixture.repositoryRoot + "/Tasks")
            #expect(try spec.examples("train").count == counts.0, "\(name) train")
            #expect(try spec.examples("dev").count == counts.1, "\(name) dev")
            #expect(try spec.examples("test").allSatisfy { $0.target == nil }, "\(name) test is unlabelled")
        }
    }

    @Test func badInputNamesTheFileAndLine() throws {
        let short = try error("bad-short-line.tsv")
        #expect(short.contains("bad-short-line.tsv:5:") && short.contains("expected at least 5 tab-separated fields, found 4"))
        let label = try error("bad-label.tsv")
        #expect(label.contains("bad-label.tsv:4:") && label.contains("unknown label 'yes'; expected one of 0, 1"))
        #expect(try error("empty.tsv").contains("empty.tsv: is empty; expected a header line"))
        #expect(try error("bad-header-only.tsv").contains("has no examples"))
        #expect(try error("no-such-file.tsv").contains("file not found"))
    }

    @Test func badTaskAndExperimentFiles() throws {
        #expect(throws: DataError.self) { _ = try TaskSpec.load("no-such-task", tasksDirectory: Fixture.repositoryRoot + "/Tasks") }
        do {
            _ = try TaskSpec.load("no-such-task", tasksDirectory: Fixture.repositoryRoot + "/Tasks")
        } catch {
            #expect("\(error)".contains("known tasks: cola, conll2003, goemotions, mrpc"))
        }
        let path = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).json"
        try Data(#"{"name": "x", "version": 1, "hyperparameters": {"learning_rat": 1e-4}}"#.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try Experiment.load(path)
            Issue.record("an unknown hyper-parameter must be rejected")
        } catch {
            #expect("\(error)".contains("unknown hyper-parameter 'learning_rat'"))
        }
    }

    @Test func shippedExperimentsLoad() throws {
        let directory = Fixture.repositoryRoot + "/Experiments"
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasSuffix(".json") {
            let experiment = try Experiment.load(directory + "/" + file)
            try Hyperparameters().applying(experiment.hyperparameters, from: experiment.path).validate()
        }
    }

    @Test func missingModelIsAClearError() {
        do {
            _ = try BertCheckpoint(directory: "/nonexistent/model")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "/nonexistent/model: model folder not found")
        }
    }

    /// A write of the record that fails (here: the run's connection made read-only after step 3) stops the run
    /// at that step, with an error naming the database, the run and how to go on; nothing after it is recorded.
    @Test func aRunStopsAtTheFirstStepItCannotRecord() throws {
        let directory = try FineTuningTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try ResultsDatabase(path: directory + "/results.db")
        var run = try FineTuningRun(spec: TaskSpec.load(Fixture.path("tasks/mrpc-slice.json")), experiment: nil,
                                    arguments: ["--max-steps", "8", "--eval-steps", "100", "--batch-size", "8", "--max-length", "40"],
                                    model: Fixture.path("tiny-bert"))
        run.outputRoot = directory + "/runs"
        var lines: [String] = []
        do {
            _ = try run.run(database: database, progress: ReadOnlyAfterStep(3, database)) { lines.append($0) }
            Issue.record("expected the run to stop")
        } catch let error as RecordError {
            // The step's write failed, then so did the write of how the run ended; both are said.
            #expect("\(error)".hasPrefix(directory + "/results.db: could not record run 1's end ("), "\(error)")
            #expect("\(error)".hasSuffix("`finetune resume 1` goes on from it"))
        }
        #expect(lines.contains { $0.contains("the run ended with: " + directory + "/results.db: could not record run 1's step 4 (") },
                "the first failure is said before the last: \(lines)")
        let steps: [SQLValue?] = try SQLiteDatabase(path: directory + "/results.db").query(
            "SELECT step FROM metrics WHERE run_id = 1 AND split = 'train' AND name = 'loss' ORDER BY step").map { $0["step"] }
        #expect(steps == [.integer(1), .integer(2), .integer(3)])
    }
}

/// results.db deleted, or replaced, under a run: the next write of the record says so, instead of writing into a
/// file no one will read.
@Suite struct RecordInPlaceTests {
    @Test(arguments: [false, true]) func aDeletedOrReplacedDatabaseStopsTheRecord(_ replaced: Bool) throws {
        let directory = try FineTuningTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/results.db"
        let database = try ResultsDatabase(path: path)
        let record = try TrackedRun(database: database, task: "t", plugin: "sequence-classification", model: "m", experiment: nil,
                                    mainMetric: "f1", seed: 1, gitCommit: nil, parameters: [])
        let step = TrainingStep(step: 1, epoch: 0.1, loss: 0.5, learningRate: 1e-4, gradientNorm: 1, samples: 8, seconds: 0.1,
                                waitSeconds: nil, allreduceSeconds: nil)
        try record.stepFinished(step)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        if replaced { _ = try ResultsDatabase(path: path) }
        do {
            try record.stepFinished(step)
            Issue.record("expected the write to be refused")
        } catch {
            #expect("\(error)".contains("could not record run 1's step 1 (\(path) was \(replaced ? "replaced by another file" : "deleted") while"),
                    "\(error)")
        }
    }
}

/// Makes the run's own connection to results.db read-only once a step is recorded: every later write fails.
final class ReadOnlyAfterStep: TrainingObserver {
    let step: Int
    let database: ResultsDatabase
    init(_ step: Int, _ database: ResultsDatabase) { (self.step, self.database) = (step, database) }
    func trainingStarted(totalSteps: Int, stepsPerEpoch: Int, examples: Int) {}
    func stepFinished(_ s: TrainingStep) throws { if s.step == step { try database.database.execute("PRAGMA query_only = ON") } }
    func evaluated(step: Int, epoch: Double, metrics: [String: Double], isBest: Bool) {}
}
