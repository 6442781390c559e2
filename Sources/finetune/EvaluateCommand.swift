import ArgumentParser
import BertKit
import Foundation

/// `finetune evaluate`: a fine-tuned model's metrics on a task's evaluation split, in the precision asked for,
/// int8 included: how much a quantised model loses, measured the way training measured the model.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a fine-tuned model (an exported folder or a run's best/) on a task's dev split, in fp32, bf16 or int8.",
        discussion: """
            finetune evaluate --model runs/3-sst2/best --task sst2 --precision int8

            The task is built as training builds it (its data read, its hyper-parameters from the task file and from \
            options such as --max-length 256, which should be the run's), with the model's own head; its evaluation \
            split is scored with the task's metrics, as after each training evaluation (--eval-batch-size sequences a \
            batch; --precision fp32, bf16 or int8). The seconds shown count \
            the forward passes and the scoring, from when the weights are packed for inference (quantised first \
            with int8) to the metrics.
            """)

    @Option(help: "Fine-tuned model folder, with the task's head.") var model: String
    @Option(help: "Task name (a file Tasks/NAME.json) or a path to a task file.") var task: String
    @Option(help: "Score this file instead of the task's dev split (same layout).") var evalFile: String?
    @Option(help: "Folder with the data of tasks the repository does not carry (or set BERTKIT_DATA_DIR).") var dataDir: String?
    /// Hyper-parameters that shape the evaluation (`--max-length 256`, `--eval-batch-size 64`, `--precision int8`),
    /// parsed by the library's table of them.
    @Argument(parsing: .allUnrecognized, help: .hidden) var hyperparameterOptions: [String] = []

    /// Training's hyper-parameters, with the precisions prediction has (int8 too) in place of training's.
    static var declarations: [HyperparameterDeclaration] {
        Hyperparameters.table().map(\.declaration).filter { $0.name != PredictionOptions.precision.name }
            + [PredictionOptions.precision.declaration]
    }

    func run() throws {
        do {
            let spec = try TaskSpec.load(task)
            let h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path)
                .applying(arguments: hyperparameterOptions, declarations: Self.declarations,
                          otherOptions: ["--model", "--task", "--eval-file", "--data-dir"])
            let precision = h[PredictionOptions.precision]
            let setup = TaskSetup(spec: spec, checkpoint: try BertCheckpoint(directory: model), hyperparameters: h,
                                  data: DataSources(evalFile: evalFile, dataDirectory: dataDir))
            let task = try spec.plugin.init(setup)
            guard task.loadReport.initialised.isEmpty else {
                throw UsageError("\(model) has no \(spec.plugin.name) head for \(spec.name): "
                    + "\(task.loadReport.initialised.joined(separator: ", ")) would be new (a fine-tuned model of this task is needed)")
            }
            if let note = precision.hardwareNote { FileHandle.standardError.write(Data("warning: \(note)\n".utf8)) }
            // Timed once the weights are packed, as a runtime's session is built before it is timed.
            let (metrics, seconds) = try task.parameters.withFixedWeights {
                let started = Date()
                return (try task.evaluate(), Date().timeIntervalSince(started))
            }
            let scored = evalFile ?? "\(spec.name) dev"
            let rate = task.evaluationSize.map { String(format: ", %.1f examples/s", Double($0) / max(seconds, 1e-9)) } ?? ""
            say("\(scored), \(precision.rawValue): " + metrics.sorted { $0.key < $1.key }
                .map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ")
                + String(format: " (%.3f s", seconds) + rate + ")")
        } catch { fail(error) }
    }
}
