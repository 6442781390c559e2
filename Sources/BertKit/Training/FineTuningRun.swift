import Foundation

/// A fine-tuning run as `finetune --task ...` makes it: recorded in results.db (a `TrackedRun`), the task built
/// by its plugin, trained with the best model exported to `OUTPUT/ID-TASK/best`, the plugin's final files
/// written, and the run marked completed, interrupted or failed, whatever happens.
public struct FineTuningRun {
    public let spec: TaskSpec
    public let experiment: Experiment?
    public let hyperparameters: Hyperparameters
    /// The checkpoint to start from: a Hugging Face model folder.
    public let model: String
    public var data = DataSources()
    /// The folder that holds each run's folder.
    public var outputRoot = "runs"

    /// How a run ended.
    public struct Outcome {
        public let run: Int64
        public let status: ResultsDatabase.Status
        /// Why it did not complete.
        public let error: Error?
        public let result: TrainingResult?
        public let outputDirectory: String
    }

    /// Hyper-parameters from, in this order of precedence, the defaults, the task file, the experiment and
    /// command-line `arguments` (`--learning-rate 5e-5`); `otherOptions` are the command's own options, named
    /// when an unknown option is near one of them.
    public init(spec: TaskSpec, experiment: Experiment?, arguments: [String] = [], otherOptions: [String] = [], model: String) throws {
        self.spec = spec
        self.experiment = experiment
        // The task's plugin may be one of the caller's own, beside the toolkit's.
        let plugins = TaskPlugins.all.contains { ObjectIdentifier($0) == ObjectIdentifier(spec.plugin) } ? TaskPlugins.all : TaskPlugins.all + [spec.plugin]
        var h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path, plugins: plugins)
        if let experiment { h = try h.applying(experiment.hyperparameters, from: experiment.path, plugins: plugins) }
        h = try h.applying(arguments: arguments, otherOptions: otherOptions, plugins: plugins)
        try h.validate(plugins: plugins)
        hyperparameters = h
        self.model = model
    }

    /// Runs it, writing what happens to `log` (one line at a time) and showing steps through `progress`;
    /// `stop` ends it after the current step. Throws only when the run cannot be recorded at all.
    public func run(database: ResultsDatabase, progress: TrainingObserver? = nil, stop: StopFlag = StopFlag(),
                    log: (String) -> Void) throws -> Outcome {
        let h = hyperparameters
        let experimentName = experiment.map { "\($0.name)@v\($0.version)" }
        let record = try TrackedRun(database: database, task: spec.name, model: model, experiment: experimentName,
                                    mainMetric: spec.mainMetric, seed: h[.seed], gitCommit: GitCommit.current(),
                                    parameters: h.parameters(for: spec.plugin))
        let output = "\(outputRoot)/\(record.id)-\(spec.name)"
        log("run \(record.id): \(spec.name) on \(model)\(experimentName.map { " (experiment \($0))" } ?? ""), results in \(database.path)")
        do {
            try record.setOutputDirectory(output)
            let task = try spec.plugin.init(TaskSetup(spec: spec, checkpoint: BertCheckpoint(directory: model),
                                                      hyperparameters: h, data: data))
            log(task.loadReport.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            log("  \(task.dataSummary); learning rate \(h[.learningRate]), batch \(h[.batchSize]), max length \(h[.maxLength])")
            for warning in task.dataWarnings.prefix(10) { log("  warning: \(warning)") }
            if task.dataWarnings.count > 10 { log("  … and \(task.dataWarnings.count - 10) more warnings") }
            if let note = h[.precision].hardwareNote { log("  warning: \(note)") }
            if stop.isSet { throw TrainingError.interrupted(step: 0) }

            let trainer = Trainer(task: task, hyperparameters: h, bestModelDirectory: output + "/best",
                                  observers: [record] + (progress.map { [$0] } ?? []), stopRequested: stop)
            let result = try trainer.run()
            try record.logArtifact(path: output + "/best", kind: "best-model")
            let finish = try task.finish(outputDirectory: output)
            for (split, metrics) in finish.metrics.sorted(by: { $0.key < $1.key }) {
                try record.log(split: split, step: result.steps, epoch: nil, metrics)
                log("  \(split) (final model): " + metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", "))
            }
            for file in finish.files { try record.logArtifact(path: file.path, kind: file.kind) }
            return Outcome(run: record.id, status: record.finish(), error: nil, result: result, outputDirectory: output)
        } catch {
            return Outcome(run: record.id, status: record.finish(error: error), error: error, result: nil, outputDirectory: output)
        }
    }
}

/// The commit of the repository the toolkit runs in, recorded with each run.
enum GitCommit {
    static func current() -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "rev-parse", "--short=12", "HEAD"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(data: pipe.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8)?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
