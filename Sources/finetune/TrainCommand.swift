import ArgumentParser
import BertKit
import Foundation

/// `finetune --task mrpc`: fine-tunes the encoder on a task, logging the run to results.db.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model on a task (the default command).",
        usage: "finetune [train] --task <task> [--experiment <name>] [--model <dir>] [--<hyper-parameter> <value> ...]",
        discussion: """
            Hyper-parameters come from the defaults, then the task file, then --experiment, then these options:

            \(OptionHelp.hyperparameters)

            The best model (by the task's main metric on dev) is exported to runs/<id>-<task>/best, training \
            checkpoints go to runs/<id>-<task>/checkpoints, and `finetune resume <id>` continues an interrupted run.
            """)

    @Option(help: "Task name (a file Tasks/NAME.json) or a path to a task file.")
    var task: String?

    @Option(help: "Named hyper-parameter set, Experiments/NAME.json (or a path).")
    var experiment: String?

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var databaseOptions: DatabaseOptions

    @Option(help: "Folder for run outputs.") var outputDir = "runs"
    @Option(help: "Use this file as the training split instead of the task's.") var trainFile: String?
    @Option(help: "Use this file as the evaluation split instead of the task's.") var evalFile: String?
    @Option(help: "Folder with the data of tasks the repository does not carry, such as conll2003 (or set BERTKIT_DATA_DIR).")
    var dataDir: String?
    @Option(help: "Pre-training: a plain-text corpus (one sentence per line, a blank line between documents); its last 5 % of documents are held out unless --eval-file names another.")
    var text: String?
    @Option(help: "Go on with this interrupted run from its latest checkpoint (as `finetune resume RUN`).")
    var resume: Int64?
    @OptionGroup var processOptions: ProcessOptions
    /// Set by `finetune sweep` for the runs it starts: the sweep and the configuration the run belongs to.
    @Option(help: .hidden) var sweep: Int64?
    @Option(help: .hidden) var sweepConfiguration: String?

    /// Every hyper-parameter's option (`--learning-rate 5e-5`), parsed by the library's table of them.
    @Argument(parsing: .allUnrecognized, help: .hidden) var hyperparameterOptions: [String] = []

    /// The command's options that are not hyper-parameters, for suggestions when an option is misspelt.
    static let ownOptions = ["--task", "--experiment", "--model", "--db", "--output-dir", "--train-file", "--eval-file", "--data-dir",
                             "--text", "--resume", "--threads", "--mpi-timeout", "--sweep", "--sweep-configuration"]

    func validate() throws {
        if task == nil && resume == nil { throw ValidationError("name a task (--task mrpc) or a run to resume (--resume RUN)") }
    }

    func run() throws {
        processOptions.apply()
        if let resume {
            Resume.resume(resume, arguments: hyperparameterOptions, databasePath: databaseOptions.db, task: task)
        }
        let processes = ProcessGroup.current
        let job: FineTuningRun, database: ResultsDatabase?
        do {
            var run = try FineTuningRun(spec: TaskSpec.load(task!), experiment: experiment.map { try Experiment.load($0) },
                                        arguments: hyperparameterOptions, otherOptions: Self.ownOptions, model: modelOptions.model)
            run.data = DataSources(trainFile: trainFile, evalFile: evalFile, dataDirectory: dataDir, textFile: text)
            run.outputRoot = outputDir
            run.sweep = sweep.map { ($0, sweepConfiguration ?? "") }
            job = run
            // Process 0 alone writes results.db.
            database = processes.isMain ? try ResultsDatabase(path: databaseOptions.db) : nil
        } catch { fail(error, processes: processes) }
        if let database { execute(job, database: database, processes: processes) } else { executeWorker(job, processes: processes) }
    }
}

/// `finetune resume RUN`: continues an interrupted run from its latest checkpoint, in the same results.db row.
struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue an interrupted run from its latest training checkpoint, as if it had never stopped.",
        discussion: """
            The run keeps its task, model, data and hyper-parameters; options may change only what cannot change \
            the result (--eval-batch-size, --save-strategy, --save-steps, --save-total-limit).
            """)

    @Argument(help: "Run id.") var id: Int64
    @OptionGroup var databaseOptions: DatabaseOptions
    @OptionGroup var processOptions: ProcessOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var hyperparameterOptions: [String] = []

    func run() throws {
        processOptions.apply()
        Self.resume(id, arguments: hyperparameterOptions, databasePath: databaseOptions.db, task: nil)
    }

    static func resume(_ id: Int64, arguments: [String], databasePath: String, task: String?) -> Never {
        let processes = ProcessGroup.current
        let job: FineTuningRun, database: ResultsDatabase
        do {
            // Every process reads the run's record and checkpoint (a shared folder, as with the data); process 0
            // alone writes.
            guard FileManager.default.fileExists(atPath: databasePath) else { throw UsageError("no results database at \(databasePath)") }
            database = try ResultsDatabase(path: databasePath)
            job = try FineTuningRun.resuming(id, in: database, arguments: arguments, otherOptions: ["--db", "--threads", "--mpi-timeout"])
            if let task, job.spec.name != task, job.spec.path != task {
                throw UsageError("run \(id) trained task \(job.spec.name), not \(task)")
            }
        } catch { fail(error, processes: processes) }
        if processes.isMain { execute(job, database: database, processes: processes) } else { executeWorker(job, processes: processes) }
        Foundation.exit(0)
    }
}

/// Runs a fine-tuning job with a progress display, Ctrl-C handling and a closing line; exits 130 when it was
/// interrupted and 1 when it failed.
func execute(_ job: FineTuningRun, database: ResultsDatabase, processes: ProcessGroup = .single) {
    let started = Date()
    let stop = StopFlag()
    let signals = SignalWatcher(flag: stop)
    let progress = ProgressDisplay(mainMetric: job.spec.mainMetric, metrics: job.spec.metrics)
    let outcome: FineTuningRun.Outcome
    do { outcome = try job.run(database: database, progress: progress, stop: stop, processes: processes, log: say) } catch { fail(error) }
    progress.clearBar()
    withExtendedLifetime(signals) {
        switch outcome.status {
        case .completed:
            let result = outcome.result!
            let best = outcome.outputDirectory + "/best"
            // The whole command's time (reading and tokenising the data included), and the training loop's.
            let seconds = String(format: "%.0f s (training %.0f s)", Date().timeIntervalSince(started), result.seconds)
            say("run \(outcome.run) completed in \(seconds)\(job.resumption != nil ? " since it was resumed" : ""): best \(progress.describe(result.bestMetrics)) at step \(result.bestStep); model in \(best)")
            let me = invocation
            say("next: \(me) runs show \(outcome.run)   (hyper-parameters, metrics, files)\n"
                + "      \(me) export \(outcome.run) --to exported/\(job.spec.name)   (a Hugging Face folder)\n"
                + "      \(me) predict --model \(best) --input FILE   (a prediction per line of FILE)")
        case .interrupted:
            var resumable: String? = nil
            if case .interrupted(_, let checkpoint)? = outcome.error as? TrainingError { resumable = checkpoint }
            say("\nrun \(outcome.run) interrupted; marked so in \(database.path)"
                + (resumable.map { "; `finetune resume \(outcome.run)` goes on from \($0)" } ?? ""))
            stop.exit(130)
        case .failed, .running:
            processes.parting()
            fail(outcome.error!)
        }
    }
}

/// Process 1, 2, … of a group started by an MPI launcher: trains its shares alongside process 0, which reports
/// and records everything; exits 130 when the run was interrupted and 1 when it failed.
func executeWorker(_ job: FineTuningRun, processes: ProcessGroup) -> Never {
    let stop = StopFlag()
    let signals = SignalWatcher(flag: stop, stopMessage: "process \(processes.rank): stopping after this step")
    do {
        try withExtendedLifetime(signals) { try job.runAsWorker(processes: processes, stop: stop) }
    } catch TrainingError.interrupted {
        Foundation.exit(130)
    } catch {
        processes.parting()
        fail(error, processes: processes)
    }
    Foundation.exit(0)
}

extension Precision: ExpressibleByArgument {}
