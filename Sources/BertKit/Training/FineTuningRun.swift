import Foundation
import Kernels

/// A fine-tuning run as `finetune --task ...` makes it: recorded in results.db (a `TrackedRun`), the task built
/// by its plugin, trained with the best model exported to `OUTPUT/ID-TASK/best` and training checkpoints in
/// `OUTPUT/ID-TASK/checkpoints`, the plugin's final files written, and the run marked completed, interrupted or
/// failed, whatever happens. `resuming(_:in:arguments:)` takes an interrupted run up again from its latest
/// checkpoint, in the same results.db row.
public struct FineTuningRun {
    public let spec: TaskSpec
    public let experiment: Experiment?
    public let hyperparameters: Hyperparameters
    /// The checkpoint to start from: a Hugging Face model folder.
    public let model: String
    public var data = DataSources()
    /// The folder that holds each run's folder.
    public var outputRoot = "runs"
    /// The sweep this run belongs to, and its configuration's label (`finetune sweep` sets it).
    public var sweep: (id: Int64, configuration: String)?
    /// Newer checkpoints that `resuming` passed over (damaged or incomplete), each with why: said when the run starts.
    public private(set) var skippedCheckpoints: [String] = []
    /// When set, the run goes on from this checkpoint of an earlier run (`resuming(_:in:arguments:)`).
    public private(set) var resumption: (run: Int64, checkpoint: TrainingCheckpoint, outputDirectory: String)?

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
        let plugins = Self.plugins(with: spec.plugin)
        var h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path, plugins: plugins)
        if let experiment { h = try h.applying(experiment.hyperparameters, from: experiment.path, plugins: plugins) }
        h = try h.applying(arguments: arguments, otherOptions: otherOptions, plugins: plugins)
        try h.validate(plugins: plugins)
        self.init(spec: spec, experiment: experiment, hyperparameters: h, model: model)
    }

    /// A run configured in code: the task's hyper-parameters with `hyperparameters` set over them
    /// (`h[.learningRate] = 5e-5`), checked as the command line's are.
    public init(spec: TaskSpec, hyperparameters given: Hyperparameters, model: String) throws {
        let plugins = Self.plugins(with: spec.plugin)
        let h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path, plugins: plugins).setting(given)
        try h.validate(plugins: plugins)
        self.init(spec: spec, experiment: nil, hyperparameters: h, model: model)
    }

    private init(spec: TaskSpec, experiment: Experiment?, hyperparameters: Hyperparameters, model: String) {
        self.spec = spec
        self.experiment = experiment
        self.hyperparameters = hyperparameters
        self.model = model
    }

    /// The toolkit's plugins, and the task's own if it is not one of them.
    static func plugins(with plugin: any TaskPlugin.Type) -> [any TaskPlugin.Type] {
        TaskPlugins.all.contains { ObjectIdentifier($0) == ObjectIdentifier(plugin) } ? TaskPlugins.all : TaskPlugins.all + [plugin]
    }

    /// Run `id` of `database`, to go on from its latest complete checkpoint with the task, model, data and
    /// hyper-parameters it was started with. `arguments` may change only what cannot change the result (the
    /// evaluation batch, how checkpoints are kept); anything else is refused, naming the hyper-parameters.
    public static func resuming(_ id: Int64, in database: ResultsDatabase, arguments: [String] = [],
                                otherOptions: [String] = []) throws -> FineTuningRun {
        guard let record = try database.run(id) else { throw UsageError("no run \(id) in \(database.path)") }
        guard record.status != "completed" else { throw UsageError("run \(id) is completed; there is nothing to resume") }
        guard record.status != "running" else { throw UsageError("run \(id) is still running (process \(record.host ?? "?"))") }
        guard let output = record.outputDirectory else {
            throw UsageError("run \(id) has no output folder recorded, so no checkpoint to resume from")
        }
        let (latest, skipped) = TrainingCheckpoint.latestIntact(in: output + "/checkpoints")
        guard let checkpoint = latest else {
            throw UsageError("run \(id) has no intact training checkpoint to resume from"
                + (skipped.isEmpty ? " (it stopped before its first one, or save_strategy was no)" : ": " + skipped.joined(separator: "; ")))
        }
        let job = checkpoint.state.job
        if let owner = job["run"], owner != String(id) {
            throw CheckpointError(file: checkpoint.directory, "belongs to run \(owner), not run \(id)")
        }
        guard let taskFile = job["task_file"], let model = job["model"] else {
            throw CheckpointError(file: checkpoint.directory + "/trainer_state.json", "does not say which task and model it trained")
        }
        let spec = try TaskSpec.load(taskFile)
        let saved = try Hyperparameters(recorded: checkpoint.state.hyperparameters, from: checkpoint.directory + "/trainer_state.json",
                                        plugins: plugins(with: spec.plugin))
        let requested = try saved.applying(arguments: arguments, otherOptions: otherOptions, plugins: plugins(with: spec.plugin))
        let changed = requested.differences(from: saved, plugins: plugins(with: spec.plugin))
        guard changed.isEmpty else {
            throw UsageError("run \(id) cannot resume with other hyper-parameters than it was trained with: "
                + changed.map { "\($0.name) \($0.other) -> \($0.this)" }.joined(separator: ", "))
        }
        var run = FineTuningRun(spec: spec, experiment: try job["experiment"].map { try Experiment.load($0) },
                                hyperparameters: requested, model: model)
        run.data = DataSources(trainFile: job["train_file"], evalFile: job["eval_file"], dataDirectory: job["data_dir"],
                               textFile: job["text_file"])
        run.resumption = (id, checkpoint, output)
        run.skippedCheckpoints = skipped
        return run
    }

    /// Process `processes.rank` (not 0) of a group: builds the same task and computes its share of every step
    /// and evaluation alongside process 0, writing nothing. Returns when training ends; throws what ended it.
    public func runAsWorker(processes: ProcessGroup, stop: StopFlag) throws {
        precondition(!processes.isMain, "process 0 runs `run`")
        let (task, _) = try makeTask(processes)
        let trainer = Trainer(task: task, hyperparameters: hyperparameters, bestModelDirectory: nil, checkpointDirectory: nil,
                              stopRequested: stop, processes: processes)
        _ = try trainer.run(resumingFrom: resumption?.checkpoint)
    }

    /// Creates a folder of this run's own at `path`, or at `path-2`, `path-3`, … when that name is taken (say, by a
    /// run of an earlier results.db over the same output folder, or by a link): a run never writes into a folder
    /// it did not create. Returns the folder.
    static func makeRunFolder(_ path: String) throws -> String {
        func unwritable(_ folder: String, _ reason: String) -> DataError {
            DataError(file: folder, "the run's output folder cannot be written (\(reason)); choose another with --output-dir")
        }
        let parent = (path as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw unwritable(path, error.localizedDescription)
        }
        for n in 1...1000 {
            let folder = n == 1 ? path : "\(path)-\(n)"
            if mkdir(folder, 0o755) == 0 { return folder }
            guard errno == EEXIST else { throw unwritable(folder, String(cString: strerror(errno))) }
        }
        throw unwritable(path, "it and 999 numbered folders of that name exist already")
    }

    /// Fails now, naming the folder, if the run could not write its outputs there after training.
    static func checkWritable(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let probe = directory + "/.write-test-\(ProcessInfo.processInfo.processIdentifier)"
            try Data().write(to: URL(fileURLWithPath: probe))
            try FileManager.default.removeItem(atPath: probe)
        } catch {
            throw DataError(file: directory, "the run's output folder cannot be written (\(error.localizedDescription)); choose another with --output-dir")
        }
    }

    /// What a checkpoint records of this run beside its training state, with absolute paths, for `resuming`.
    var job: [String: String] {
        let fm = FileManager.default
        func absolute(_ path: String?) -> String? {
            path.map { $0.hasPrefix("/") ? $0 : (fm.currentDirectoryPath as NSString).appendingPathComponent($0) }
        }
        let entries: [(String, String?)] = [
            ("task_file", absolute(spec.path)), ("model", absolute(model)), ("experiment", absolute(experiment?.path)),
            ("train_file", absolute(data.trainFile)), ("eval_file", absolute(data.evalFile)),
            ("data_dir", absolute(data.dataDirectory)), ("text_file", absolute(data.textFile)),
        ]
        return Dictionary(uniqueKeysWithValues: entries.compactMap { key, value in value.map { (key, $0) } })
    }

    /// The task, built by its plugin, once every process of the group has built it, and the host of each process.
    private func makeTask(_ processes: ProcessGroup) throws -> (task: any TaskPlugin, hosts: [String]) {
        let task = try processes.agree(that: "load the task's data and model") {
            try spec.plugin.init(TaskSetup(spec: spec, checkpoint: BertCheckpoint(directory: model), hyperparameters: hyperparameters,
                                           data: data, processes: processes))
        }
        return (task, try processes.hostNames())
    }

    /// Runs it, writing what happens to `log` (one line at a time) and showing steps through `progress`;
    /// `stop` ends it after the current step, with a checkpoint. Throws only when the run cannot be recorded.
    /// With a group of `processes` this is process 0's part, which alone records and writes anything; every
    /// other process runs `runAsWorker` at the same time.
    public func run(database: ResultsDatabase, progress: TrainingObserver? = nil, stop: StopFlag = StopFlag(),
                    processes: ProcessGroup = .single, log: (String) -> Void) throws -> Outcome {
        precondition(processes.isMain, "process 0 records the run; the others call runAsWorker")
        let h = hyperparameters
        let experimentName = experiment.map { "\($0.name)@v\($0.version)" }
        let record: TrackedRun
        var output: String, created = false
        if let resumption {
            record = try TrackedRun(resuming: resumption.run, in: database, fromStep: resumption.checkpoint.state.step)
            output = resumption.outputDirectory
            for reason in skippedCheckpoints { log("  skipped a damaged checkpoint: \(reason)") }
            log("run \(record.id): \(spec.name) resumed from \(resumption.checkpoint.directory) (step \(resumption.checkpoint.state.step)), results in \(database.path)")
        } else {
            record = try TrackedRun(database: database, task: spec.name, plugin: spec.plugin.name, model: model, experiment: experimentName,
                                    mainMetric: spec.mainMetric, seed: h[.seed], gitCommit: GitCommit.current(),
                                    parameters: h.parameters(for: spec.plugin))
            output = "\(outputRoot)/\(record.id)-\(spec.name)"
            if let sweep { try database.linkRun(record.id, toSweep: sweep.id, configuration: sweep.configuration, seed: h[.seed]) }
            log("run \(record.id): \(spec.name) on \(model)\(experimentName.map { " (experiment \($0))" } ?? ""), results in \(database.path)")
        }
        let (id, path) = (record.id, database.path)
        stop.whenQuitting { TrackedRun.markQuit(run: id, databasePath: path) }
        if processes.isDistributed {
            processes.whenUnresponsive { reason in
                TrackedRun.markQuit(run: id, databasePath: path, reason: reason + "; `finetune resume \(id)` goes on from the latest checkpoint")
            }
            stop.whenStopping {
                TrackedRun.markQuit(run: id, databasePath: path, reason: "stopped by a signal (Ctrl-C, SIGTERM, or the launcher "
                    + "ending the job because one of its processes ended); `finetune resume \(id)` goes on from the latest checkpoint")
            }
        }
        do {
            if resumption == nil {
                output = try Self.makeRunFolder(output)
                created = true
            }
            try record.setOutputDirectory(output)
            try Self.checkWritable(output)
            CrashMarker.arm(folder: output)
            defer { CrashMarker.disarm() }
            ModelFolder.removeAbandonedStaging(in: output)  // a best/ half-written when the process was killed
            let (task, hosts) = try makeTask(processes)
            if let resumption {
                log("  parameters, optimizer state and position in the epoch from \(resumption.checkpoint.directory)")
            } else {
                log(task.loadReport.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            }
            if processes.isDistributed {
                let distinct = hosts.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                log("  \(processes.size) processes on \(distinct.count) host\(distinct.count == 1 ? "" : "s") (\(distinct.joined(separator: ", "))), \(Parallel.workers) thread\(Parallel.workers == 1 ? "" : "s") each")
                try database.recordProcesses(record.id, count: processes.size, hosts: hosts, threadsEach: Parallel.workers)
            }
            log("  \(task.dataSummary); learning rate \(h[.learningRate]), batch \(h[.batchSize]), max length \(h[.maxLength])")
            for warning in task.dataWarnings.prefix(10) { log("  warning: \(warning)") }
            if task.dataWarnings.count > 10 { log("  … and \(task.dataWarnings.count - 10) more warnings") }
            if let note = h[.precision].hardwareNote { log("  warning: \(note)") }
            if let note = try Tokenizer(directory: model).warning { log("  warning: \(note)") }
            if stop.isSet { throw TrainingError.interrupted(step: 0, checkpoint: nil) }

            let trainer = Trainer(task: task, hyperparameters: h, bestModelDirectory: output + "/best",
                                  checkpointDirectory: output + "/checkpoints",
                                  observers: [record] + (progress.map { [$0] } ?? []), stopRequested: stop, processes: processes)
            trainer.job = job.merging(["run": String(record.id)]) { $1 }
            let result = try trainer.run(resumingFrom: resumption?.checkpoint)
            if let reason = result.stopReason { log("  \(reason)") }
            try record.logArtifact(path: output + "/best", kind: "best-model")
            let finish = try task.parameters.withFixedWeights { try task.finish(outputDirectory: output) }
            for (split, metrics) in finish.metrics.sorted(by: { $0.key < $1.key }) {
                try record.log(split: split, step: result.steps, epoch: nil, metrics)
                log("  \(split) (final model): " + metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", "))
            }
            for file in finish.files { try record.logArtifact(path: file.path, kind: file.kind) }
            if !h[.keepCheckpoints] { try record.discardCheckpoints(in: output + "/checkpoints") }
            return Outcome(run: record.id, status: try record.finish(stopReason: result.stopReason), error: nil, result: result,
                           outputDirectory: output)
        } catch {
            if created { rmdir(output) }  // a run that failed before writing anything leaves no empty folder behind
            let failure = error, status: ResultsDatabase.Status
            do { status = try record.finish(error: failure) } catch {
                log("  the run ended with: \(failure)")  // what results.db could not take, before its own error
                throw error
            }
            return Outcome(run: record.id, status: status, error: failure, result: nil, outputDirectory: output)
        }
    }
}

/// The commit of the repository the toolkit runs in, recorded with each run.
enum GitCommit {
    /// Asked once per process: a run saves it with every checkpoint.
    static let value: String? = current()

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
