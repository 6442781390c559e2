import ArgumentParser
import BertKit
import Foundation

/// `finetune --task mrpc`: fine-tunes the encoder on a task, logging the run to results.db.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model on a task (the default command).",
        discussion: """
            Hyper-parameters come from the defaults, then from --experiment, then from flags.
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
    @Flag(help: "Token classification: label every sub-token of a word, not only the first.") var labelAllSubtokens = false

    @Option(name: .customLong("learning-rate"), help: "Peak learning rate.") var learningRate: Double?
    @Option(help: "Sequences per optimizer micro-batch.") var batchSize: Int?
    @Option(help: "Maximum tokens per sequence (pairs are truncated longest-first).") var maxLength: Int?
    @Option(help: "Training epochs.") var epochs: Double?
    @Option(help: "Optimizer steps to train for, instead of epochs.") var maxSteps: Int?
    @Option(help: "Fraction of steps for linear warm-up.") var warmupRatio: Double?
    @Option(help: "AdamW weight decay (not on biases and LayerNorm).") var weightDecay: Double?
    @Option(help: "Clip gradients to this global L2 norm.") var maxGradNorm: Double?
    @Option(help: "Micro-batches per optimizer step.") var gradientAccumulation: Int?
    @Option(help: "Seed of data order, dropout and head initialisation.") var seed: UInt64?
    @Option(help: "Number format of matrix products: fp32, or bf16 (bf16 inputs, fp32 accumulation, fp32 master weights).")
    var precision: Precision?
    @Option(help: "Evaluate every N optimizer steps (default: every epoch).") var evalSteps: Int?
    @Option(help: "Batch size for evaluation.") var evalBatchSize: Int?
    @Option(help: "Group sequences of similar length into batches (true/false).") var groupByLength: Bool?

    @Option(help: "Span QA: context tokens shared by consecutive windows (transformers' stride; not Google's doc_stride).")
    var windowOverlap: Int?

    @Option(help: "Pre-training: a plain-text corpus (one sentence per line, a blank line between documents); its last 5 % of documents are held out unless --eval-file names another.")
    var text: String?
    @Option(help: "Pre-training: share of tokens chosen for masked-LM prediction.") var mlmProbability: Double?
    @Option(help: "Pre-training: at most this many masked-LM predictions per sequence.") var maxPredictions: Int?
    @Option(help: "Pre-training: probability of packing a pair shorter than the maximum length.")
    var shortSequenceProbability: Double?
    @Option(help: "Pre-training: train next-sentence prediction too (true/false; false trains masked LM alone).")
    var nextSentencePrediction: Bool?
    @Option(help: "Pre-training: mask whole words (true/false).") var wholeWordMasking: Bool?
    @Option(help: "Pre-training: new masks every epoch (true/false; false keeps one mask per sequence).")
    var dynamicMasking: Bool?

    /// Built-in defaults, then the task file's, then the experiment's, then flags.
    func hyperparameters(for spec: TaskSpec) throws -> (Hyperparameters, Experiment?) {
        let experiment = try experiment.map { try Experiment.load($0) }
        var h = try Hyperparameters().applying(spec.hyperparameters).applying(experiment?.hyperparameters ?? [:])
        if let learningRate { h.learningRate = learningRate }
        if let batchSize { h.batchSize = batchSize }
        if let maxLength { h.maxLength = maxLength }
        if let epochs { h.epochs = epochs }
        if let maxSteps { h.maxSteps = maxSteps }
        if let warmupRatio { h.warmupRatio = warmupRatio }
        if let weightDecay { h.weightDecay = weightDecay }
        if let maxGradNorm { h.maxGradNorm = maxGradNorm }
        if let gradientAccumulation { h.gradientAccumulation = gradientAccumulation }
        if let seed { h.seed = seed }
        if let precision { h.precision = precision }
        if let evalSteps { h.evalSteps = evalSteps }
        if let evalBatchSize { h.evalBatchSize = evalBatchSize }
        if let groupByLength { h.groupByLength = groupByLength }
        if let windowOverlap { h.windowOverlap = windowOverlap }
        if let mlmProbability { h.mlmProbability = mlmProbability }
        if let maxPredictions { h.maxPredictions = maxPredictions }
        if let shortSequenceProbability { h.shortSequenceProbability = shortSequenceProbability }
        if let nextSentencePrediction { h.nextSentencePrediction = nextSentencePrediction }
        if let wholeWordMasking { h.wholeWordMasking = wholeWordMasking }
        if let dynamicMasking { h.dynamicMasking = dynamicMasking }
        try h.validate()
        return (h, experiment)
    }

    func run() throws {
        let spec: TaskSpec, h: Hyperparameters, experiment: Experiment?, database: ResultsDatabase
        do {
            spec = try TaskSpec.load(task)
            (h, experiment) = try hyperparameters(for: spec)
            database = try ResultsDatabase(path: databaseOptions.db)
        } catch { fail(error) }

        let experimentName = experiment.map { "\($0.name)@v\($0.version)" }
        let run: Int64
        do {
            run = try database.startRun(task: spec.name, model: modelOptions.model, experiment: experimentName,
                                        mainMetric: spec.mainMetric, seed: h.seed, gitCommit: gitCommit(),
                                        outputDirectory: nil,
                                        parameters: h.parameters(for: spec.plugin) + (spec.plugin == "token-classification" ? [("label_all_subtokens", "\(labelAllSubtokens)")] : []))
        } catch { fail(error) }
        let output = "\(outputDir)/\(run)-\(spec.name)"
        let stop = StopFlag()
        let signals = SignalWatcher(flag: stop)
        say("run \(run): \(spec.name) on \(modelOptions.model)\(experimentName.map { " (experiment \($0))" } ?? ""), results in \(databaseOptions.db)")

        do {
            try database.setOutputDirectory(run, output)
            let checkpoint = try BertCheckpoint(directory: modelOptions.model)
            var options = TaskOptions()
            options.maxLength = h.maxLength
            options.batchSize = h.batchSize
            options.evaluationBatchSize = h.evalBatchSize
            options.seed = h.seed
            options.precision = h.precision
            options.trainFile = trainFile
            options.evalFile = evalFile
            options.dataDirectory = dataDir
            options.labelAllSubtokens = labelAllSubtokens
            options.windowOverlap = h.windowOverlap
            options.textFile = text
            options.preTraining = PreTrainingOptions(h)
            let task = try TaskPlugins.make(spec, checkpoint: checkpoint, options: options)
            say(task.loadReport.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            say("  \(task.dataSummary); learning rate \(h.learningRate), batch \(h.batchSize), max length \(h.maxLength)")
            for warning in task.dataWarnings.prefix(10) { say("  warning: \(warning)") }
            if task.dataWarnings.count > 10 { say("  … and \(task.dataWarnings.count - 10) more warnings") }
            if h.precision == .bfloat16, !Gemm.hasNativeBFloat16 { say("  warning: \(Precision.emulatedBFloat16Note)") }
            if stop.isSet { throw TrainingError.interrupted(step: 0) }

            let progress = RunObserver(run: run, database: database, mainMetric: spec.mainMetric)
            let trainer = Trainer(task: task, hyperparameters: h, bestModelDirectory: output + "/best",
                                  observer: progress, stopRequested: stop)
            let result = try trainer.run()
            try database.logArtifact(run, path: output + "/best", kind: "best-model")
            let finish = try task.finish(outputDirectory: output)
            for (split, metrics) in finish.metrics.sorted(by: { $0.key < $1.key }) {
                try database.logMetrics(run, split: split, step: result.steps, epoch: nil, metrics)
                say("  \(split) (final model): " + metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", "))
            }
            for file in finish.files { try database.logArtifact(run, path: file.path, kind: file.kind) }
            try database.finishRun(run, status: .completed)
            progress.finish()
            let metrics = result.bestMetrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
            say("run \(run) completed in \(String(format: "%.0f", result.seconds)) s: best \(metrics.joined(separator: ", ")) at step \(result.bestStep); model in \(output)/best")
        } catch let error as TrainingError {
            if case .interrupted = error {
                try? database.finishRun(run, status: .interrupted, error: error.description)
                say("\nrun \(run) interrupted; marked so in \(databaseOptions.db)")
                withExtendedLifetime(signals) { Foundation.exit(130) }
            }
            try? database.finishRun(run, status: .failed, error: error.description)
            fail(error)
        } catch {
            try? database.finishRun(run, status: .failed, error: error.localizedDescription)
            fail(error)
        }
        withExtendedLifetime(signals) {}
    }

    func gitCommit() -> String? {
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

/// Turns Ctrl-C (SIGINT) and SIGTERM into a request to stop after the current step.
final class SignalWatcher {
    private var sources: [DispatchSourceSignal] = []

    init(flag: StopFlag) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if flag.isSet { Foundation.exit(130) }  // a second Ctrl-C does not wait
                flag.set()
                FileHandle.standardError.write(Data("\nstopping after this step (Ctrl-C again to quit at once)\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }
}

extension Precision: ExpressibleByArgument {}
