import Foundation
import Testing
import BertKit

/// Hyper-parameters declared once: one table drives the command line, task and experiment files, and results.db.
@Suite struct HyperparameterTests {
    static func file(_ json: String) throws -> String {
        let path = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func everyNameIsDeclaredOnceAndItsTextReadsBack() throws {
        let names = Hyperparameters.table().map(\.declaration.name)
        #expect(Set(names).count == names.count, "\(names)")
        #expect(names.contains("label_all_subtokens") && names.contains("window_overlap") && names.contains("mlm_probability"))
        for (declaration, _) in Hyperparameters.table() where !declaration.defaultText.isEmpty {
            #expect(declaration.parseText(declaration.defaultText)?.value == declaration.defaultText, "\(declaration.name)")
        }
        var h = Hyperparameters()
        h[.learningRate] = 3e-5
        h[.seed] = 12_345_678_901_234_567
        h[.maxSteps] = 7
        #expect(h[.learningRate] == 3e-5 && h[.seed] == 12_345_678_901_234_567 && h[.maxSteps] == 7 && h[.evalSteps] == nil)
        h[.learningRate] = Hyperparameter.learningRate.defaultValue
        #expect(h.values["learning_rate"] == nil, "a default is not stored, so equal settings compare equal")
    }

    @Test func precedenceIsDefaultsTaskFileExperimentThenOptions() throws {
        let spec = try TaskSpec.load(Fixture.path("tasks/qa-tiny.json"))
        #expect(spec.hyperparameters["max_length"] == .integer(40))
        let experiment = try Self.file(#"{"name": "e", "version": 1, "hyperparameters": {"max_length": 64, "learning_rate": 2e-5}}"#)
        defer { try? FileManager.default.removeItem(atPath: experiment) }
        let run = try FineTuningRun(spec: spec, experiment: Experiment.load(experiment),
                                    arguments: ["--learning-rate=5e-5", "--window-overlap", "4"], model: Fixture.path("tiny-bert"))
        let h = run.hyperparameters
        #expect(h[.maxLength] == 64, "the experiment over the task file")
        #expect(h[.learningRate] == 5e-5 && h[.windowOverlap] == 4, "options over both")
        #expect(h[.batchSize] == 32, "the default where nothing sets it")
        #expect(h.parameters(for: SpanQATask.self).contains { $0 == ("window_overlap", "4") })
        #expect(!h.parameters(for: SequenceClassificationTask.self).contains { $0.0 == "window_overlap" },
                "another plugin's hyper-parameter is not recorded")
    }

    @Test func badOptionsAreClearErrors() throws {
        func message(_ arguments: [String]) -> String {
            do { _ = try Hyperparameters().applying(arguments: arguments, otherOptions: ["--task"]); return "no error" } catch { return "\(error)" }
        }
        #expect(message(["--lerning-rate", "1e-4"]) == "unknown option '--lerning-rate'; did you mean '--learning-rate'?")
        #expect(message(["--taks", "mrpc"]).contains("did you mean '--task'?"))
        #expect(message(["--batch-size", "many"]) == "--batch-size expects integer, found 'many'")
        #expect(message(["--seed", "-1"]) == "--seed expects integer >= 0, found '-1'")
        #expect(message(["--max-steps=-3"]) == "--max-steps must be positive, found '-3'")
        #expect(message(["--precision", "fp16"]) == "--precision expects fp32|bf16, found 'fp16'", "training names the precisions it trains in")
        #expect(message(["--precision", "int8"]) == "--precision int8 is for prediction only (finetune predict --precision int8), found 'int8'")
        #expect(message(["--epochs"]) == "--epochs needs a value (number)")
        let flags = try Hyperparameters().applying(arguments: ["--whole-word-masking", "--seed", "7", "--label-all-subtokens"])
        #expect(flags[.wholeWordMasking] && flags[.labelAllSubtokens] && flags[.seed] == 7, "a true/false option alone means true")
        var nothingToDo = Hyperparameters()
        nothingToDo[.epochs] = 0
        #expect(throws: UsageError.self) { try nothingToDo.validate() }
    }

    @Test func filesWithUnknownOrMistypedKeysNameTheFileAndTheNearestKey() throws {
        func message(_ json: String, experiment: Bool = false) throws -> String {
            let path = try Self.file(json)
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = experiment ? try Experiment.load(path).name : try TaskSpec.load(path).name
                return "no error"
            } catch {
                return "\(error)".replacingOccurrences(of: path, with: "FILE")
            }
        }
        let task = #"{"name": "t", "plugin": "sequence-classification", "dataDirectory": "d", "metrics": ["accuracy"], "mainMetric": "accuracy", "#
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv", "textA": 0}}, "lables": ["0", "1"]}"#)
                == "FILE: unknown key 'lables'; did you mean 'labels'?")
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv", "textA": 0, "lable": 1}}, "labels": ["0", "1"]}"#)
                == "FILE: split 'train': unknown key 'lable'; did you mean 'label'?")
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv"}}, "labels": ["0", "1"]}"#)
                == "FILE: split 'train': missing key 'textA'")
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv", "textA": 0}}, "labels": ["0", "1", "1"]}"#)
                == "FILE: labels repeats '1'; each class is named once")
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv", "textA": 0}}, "labels": ["0", "1"], "labelNames": ["no"]}"#)
                == "FILE: labelNames must name at least two classes")
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv", "textA": 0}}, "labels": ["0", "1"], "labelNames": ["no", "yes", "maybe"]}"#)
                == "FILE: labelNames has 3 names for 2 labels; one name per label, in their order")
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv", "textA": 0}}}"#)
                .contains("metric 'accuracy' does not fit a regression task (no labels)"), "no silent regression without labels")
        #expect(try message(task + #""splits": {"train": {"file": "a.tsv", "textA": 0}}, "labels": ["0", "1"], "hyperparameters": {"batch_sise": 8}}"#)
                == "FILE: unknown hyper-parameter 'batch_sise'; did you mean 'batch_size'?")
        #expect(try message(#"{"name": "a/../../escaped", "plugin": "sequence-classification", "dataDirectory": "d", "splits": {}, "metrics": ["accuracy"], "mainMetric": "accuracy", "labels": ["0", "1"]}"#)
                == "FILE: name 'a/../../escaped' must be letters, digits, '.', '_' and '-', not starting with '.' (it names the run's folder)")
        #expect(try message(#"{"name": "t", "plugin": "sequence-clasification", "dataDirectory": "d", "splits": {}, "metrics": [], "mainMetric": "x"}"#)
                == "FILE: unknown plugin 'sequence-clasification'; did you mean 'sequence-classification'?")
        #expect(try message(#"{"name": "e", "version": 1, "hyperparameters": {"learning_rate": "fast"}}"#, experiment: true)
                == "FILE: hyper-parameter 'learning_rate': expected number, found \"fast\"")
        #expect(try message(#"{"name": "e", "version": 1, "hyperparamters": {}}"#, experiment: true)
                == "FILE: unknown key 'hyperparamters'; did you mean 'hyperparameters'?")
    }

    @Test func anAbsoluteDataDirectoryIsTakenAsItIs() throws {
        let path = try Self.file(#"{"name": "t", "plugin": "sequence-classification", "dataDirectory": "/data/glue", "splits": {"train": {"file": "a.tsv", "textA": 0}}, "labels": ["0", "1"], "metrics": ["accuracy"], "mainMetric": "accuracy"}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try TaskSpec.load(path).file(of: "train") == "/data/glue/a.tsv")
    }

    @Test func runParamsHasAColumnPerDeclaredHyperparameter() throws {
        let path = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).db"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        _ = try ResultsDatabase(path: path)
        let columns = try SQLiteDatabase(path: path).query("SELECT name FROM pragma_table_info('run_params')").map { $0["name"]!.description }
        #expect(columns == ["run_id"] + Hyperparameters.table().map(\.declaration.name))
        // A table that changes (a new hyper-parameter) changes the view the next time the database is opened.
        _ = try ResultsDatabase(path: path, parameterColumns: Array(Hyperparameters.common.prefix(2)))
        let fewer = try SQLiteDatabase(path: path).query("SELECT name FROM pragma_table_info('run_params')").map { $0["name"]!.description }
        #expect(fewer == ["run_id", "learning_rate", "batch_size"])
    }

    @Test func evaluationVisitsEveryIndexOnceShortestFirst() {
        let lengths = [5, 3, 9, 3, 1, 7, 2]
        let batches = Batches.byLength(lengths, batchSize: 3)
        #expect(batches.map(\.count) == [3, 3, 1])
        #expect(batches.flatMap { $0 }.sorted() == Array(lengths.indices))
        #expect(batches.flatMap { $0 }.map { lengths[$0] } == lengths.sorted())
    }
}

/// The worked example of the guide "Adding a task, a head or a hyper-parameter" (ExamplePlugin.swift): it stands
/// in the guide verbatim, loads through the plugin list it is added to, trains, and exports.
@Suite struct ExamplePluginTests {
    static let plugins = TaskPlugins.all + [BinaryClassificationTask.self]

    @Test func theGuideShowsTheExampleAsItIsCompiled() throws {
        let source = try String(contentsOfFile: Fixture.repositoryRoot + "/Tests/BertKitTests/ExamplePlugin.swift", encoding: .utf8)
        let code = source.split(separator: "\n", omittingEmptySubsequences: false).drop { $0.hasPrefix("//") }
            .filter { !$0.hasPrefix("import ") }.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        let guide = try String(contentsOfFile: Fixture.repositoryRoot + "/Sources/BertKit/BertKit.docc/Extending.md", encoding: .utf8)
        #expect(guide.contains(code), "the guide's example differs from Tests/BertKitTests/ExamplePlugin.swift")
    }

    @Test func aNewHeadIsOneTypeAndOneLineInThePluginList() throws {
        #expect(throws: DataError.self) { _ = try TaskSpec.load(Fixture.path("tasks/mrpc-binary.json")) }
        let spec = try TaskSpec.load(Fixture.path("tasks/mrpc-binary.json"), plugins: Self.plugins)
        let directory = NSTemporaryDirectory() + "bertkit-example-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var run = try FineTuningRun(spec: spec, experiment: nil, arguments: ["--max-steps", "6", "--eval-steps", "3", "--batch-size", "8",
                                                                             "--max-length", "40", "--learning-rate", "1e-3"],
                                    model: Fixture.path("tiny-bert"))
        run.outputRoot = directory + "/runs"
        let database = try ResultsDatabase(path: directory + "/results.db")
        var lines: [String] = []
        let outcome = try run.run(database: database) { lines.append($0) }
        #expect(outcome.status == .completed, "\(String(describing: outcome.error))")
        #expect(lines.contains { $0.contains("newly initialised 2: classifier.weight, classifier.bias") }, "\(lines)")
        #expect(try database.metricSummaries(of: outcome.run).contains { $0.split == "dev" && $0.name == "accuracy" })
        let exported = try BertCheckpoint(directory: outcome.outputDirectory + "/best")
        #expect(try exported.rawConfig()["architectures"] as? [String] == ["BertForBinaryClassification"])
        #expect(try SafeTensorsFile(path: exported.weightsPath).entry("classifier.weight").shape == [1, exported.config.hiddenSize])

        let task = try BinaryClassificationTask(TaskSetup(spec: spec, checkpoint: BertCheckpoint(directory: Fixture.path("tiny-bert")),
                                                          hyperparameters: run.hyperparameters))
        let examples = ArraySlice(Array(0..<8))
        let before = task.trainStep(BatchShare(whole: examples), dropout: .evaluation, gradientScale: 1)
        let optimizer = Optimizer(parameters: task.parameters, weightDecay: 0, maxGradNorm: 1, settings: .init())
        for _ in 0..<5 {
            optimizer.update(learningRate: 1e-3)
            _ = task.trainStep(BatchShare(whole: examples), dropout: .evaluation, gradientScale: 1)
        }
        #expect(task.trainStep(BatchShare(whole: examples), dropout: .evaluation, gradientScale: 1) < before, "the head's gradient lowers its loss")
    }
}
