import ArgumentParser
import BertKit
import Foundation

/// `finetune --task mrpc`: fine-tunes the encoder on a task, logging the run to results.db.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model on a task (the default command).",
        discussion: """
            Hyper-parameters come from the defaults, then the task file, then --experiment, then these options:

            \(hyperparameterHelp)

            The best model (by the task's main metric on dev) is exported to runs/<id>-<task>/best.
            """)

    @Option(help: "Task name (a file Tasks/NAME.json) or a path to a task file.")
    var task: String

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

    /// Every hyper-parameter's option (`--learning-rate 5e-5`), parsed by the library's table of them.
    @Argument(parsing: .allUnrecognized, help: .hidden) var hyperparameterOptions: [String] = []

    /// One line per hyper-parameter: its option, value type, default and help (and the plugin that reads it).
    static var hyperparameterHelp: String {
        Hyperparameters.table().map { declaration, plugin in
            let fallback = declaration.defaultText.isEmpty ? "" : " (default: \(declaration.defaultText))"
            return "  \(declaration.flag) <\(declaration.placeholder)>\(fallback)\n      \(declaration.help)"
        }.joined(separator: "\n")
    }

    func run() throws {
        let job: FineTuningRun, database: ResultsDatabase
        do {
            let spec = try TaskSpec.load(task)
            var run = try FineTuningRun(spec: spec, experiment: experiment.map { try Experiment.load($0) },
                                        arguments: hyperparameterOptions, otherOptions: Self.ownOptions, model: modelOptions.model)
            run.data = DataSources(trainFile: trainFile, evalFile: evalFile, dataDirectory: dataDir, textFile: text)
            run.outputRoot = outputDir
            job = run
            database = try ResultsDatabase(path: databaseOptions.db)
        } catch { fail(error) }

        let stop = StopFlag()
        let signals = SignalWatcher(flag: stop)
        let progress = ProgressDisplay(mainMetric: job.spec.mainMetric)
        let outcome: FineTuningRun.Outcome
        do { outcome = try job.run(database: database, progress: progress, stop: stop, log: say) } catch { fail(error) }
        progress.clearBar()
        withExtendedLifetime(signals) {
            switch outcome.status {
            case .completed:
                let result = outcome.result!
                let metrics = result.bestMetrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
                say("run \(outcome.run) completed in \(String(format: "%.0f", result.seconds)) s: best \(metrics.joined(separator: ", ")) at step \(result.bestStep); model in \(outcome.outputDirectory)/best")
            case .interrupted:
                say("\nrun \(outcome.run) interrupted; marked so in \(databaseOptions.db)")
                Foundation.exit(130)
            case .failed, .running:
                fail(outcome.error!)
            }
        }
    }

    /// The command's options that are not hyper-parameters, for suggestions when an option is misspelt.
    static let ownOptions = ["--task", "--experiment", "--model", "--db", "--output-dir", "--train-file", "--eval-file", "--data-dir", "--text"]
}

extension Precision: ExpressibleByArgument {}
