import ArgumentParser
import BertKit
import Foundation

/// `finetune predict`: runs a fine-tuned model over an input file and writes one prediction per example, with
/// the plugin that the model folder's architecture names.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict with a fine-tuned model (an exported folder) over a TSV or JSONL file.",
        discussion: """
            Sequence classification: TSV input uses the columns of a task's split (--task, --split; default: the test split).
            JSONL input has one object per line with "text" (or "sentence1") and, for pairs, "text_pair" (or "sentence2").
            Output is TSV: index, prediction (the label name, or the value for regression), then one score per label;
            for a multi-label model, index, the predicted labels (comma-separated), then every label's probability.
            """)

    @Option(help: "Fine-tuned model folder (from `finetune export` or a run's best/).") var model: String
    @Option(help: "Input file, .tsv or .jsonl.") var input: String
    @Option(help: "Output file.") var output: String
    @Option(help: "Task whose split describes the TSV columns.") var task: String?
    @Option(help: "Split of the task that describes the TSV columns.") var split = "test"
    @Option(help: "Maximum tokens per sequence.") var maxLength = 128
    @Option(help: "Sequences per batch.") var batchSize = 32
    @Option(help: "Number format of matrix products: fp32, or bf16 (bf16 inputs, fp32 accumulation).") var precision = Precision.float32
    @Option(help: "Multi-label: predict a label when its probability reaches this (default: the model's own, else 0.5).")
    var threshold: Double?

    func run() throws {
        var request = try PredictionRequest(model: model, input: input, output: output)
        request.task = try task.map { try TaskSpec.load($0) }
        request.split = split
        request.maxLength = maxLength
        request.batchSize = batchSize
        request.precision = precision
        request.threshold = threshold
        let plugin = try request.plugin()
        if let note = precision.hardwareNote { FileHandle.standardError.write(Data("warning: \(note)\n".utf8)) }
        let report = try plugin.predict(request)
        print("wrote \(report.examples) predictions to \(output) (model: \(String(format: "%.2f", report.seconds)) s, \(String(format: "%.1f", Double(report.examples) / report.seconds)) examples/s)")
    }
}
