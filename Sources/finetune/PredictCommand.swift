import ArgumentParser
import BertKit
import Foundation

/// `finetune predict`: runs a fine-tuned model over an input and writes one prediction per example, with the
/// plugin that the model folder's architecture names.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict with a fine-tuned model (an exported folder or a run's best/) over text, JSONL, TSV or CoNLL input.",
        usage: "finetune predict --model <dir> --input <file> [--output <file>] [--<option> <value> ...]",
        discussion: """
            The model folder's architecture chooses what is predicted; each writes one JSON line per input (results equal \
            transformers' pipelines on the same folder):
              BertForSequenceClassification  text lines, or JSONL "text" (and "text_pair"): "label", "score" and "scores" of \
            every label (softmax); multi-label models: "labels" over the threshold and "scores" (sigmoid); regression: "value". \
            An output ending in .tsv gets TSV instead (index, prediction, then logits or probabilities); TSV input uses the \
            columns of --task's --split.
              BertForTokenClassification  text lines, or JSONL "text": "entities", each with "entity_group", "score", "start", \
            "end" (characters), "text" and "word"; --format conll (words one per line) writes "word predicted" lines.
              BertForQuestionAnswering  JSONL "question" and "context": "answer", "score", "start", "end" and the --top-k "answers".
              BertForPreTraining, BertForMaskedLM  text with [MASK]: for each mask the --top-k fillers ("token", "token_str", "score").
              BertModel (an encoder without a head, such as models/all-MiniLM-L6-v2)  text lines, or JSONL "text": its \
            sentence "embedding", pooled and normalised as the folder's sentence-transformers files say (--normalize overrides).
            --input - reads standard input line by line (JSONL, or text with --format text) and writes each result to \
            standard output as soon as it is ready.

            Each model reads the options of every model and those of its head:

            \(OptionHelp.predictionOptions)
            """)

    @Option(help: "Fine-tuned model folder (from `finetune export` or a run's best/).") var model: String
    @Option(help: "Input file, or - for standard input.") var input: String
    @Option(help: "Output file (written whole, then renamed into place), or - for standard output.") var output = "-"
    @Option(help: "Input format: text, jsonl, tsv or conll (default: from the input's name; text for other names, jsonl for -).")
    var format: InputFormat?
    @Option(help: "Task whose split describes the TSV columns.") var task: String?
    @Option(help: "Split of the task that describes the TSV columns.") var split = "test"
    @OptionGroup var processOptions: ProcessOptions
    /// The model's prediction options (`--top-k 3`), declared by its plugin (`PredictionOptions`).
    @Argument(parsing: .allUnrecognized, help: .hidden) var optionArguments: [String] = []

    static let ownOptions = ["--model", "--input", "--output", "--format", "--task", "--split", "--threads", "--mpi-timeout"]

    func run() throws {
        processOptions.apply()
        var request = try PredictionRequest(model: model, input: input, output: output)
        request.format = format
        request.task = try task.map { try TaskSpec.load($0) }
        request.split = split
        request.setup.processes = ProcessGroup.current
        // A bare encoder embeds; a model with a head predicts with its plugin.
        let embeds = SentenceEncoder.embeds(try request.setup.checkpoint.rawConfig())
        let plugin = embeds ? nil : try request.setup.plugin()
        request.setup.options = try plugin.map { try PredictionOptions.parse(optionArguments, for: $0, otherOptions: Self.ownOptions) }
            ?? Hyperparameters().applying(arguments: optionArguments, declarations: SentenceEncoder.predictionOptions, otherOptions: Self.ownOptions)
        let precision = request.setup.options[PredictionOptions.precision]
        if let note = precision.hardwareNote { FileHandle.standardError.write(Data("warning: \(note)\n".utf8)) }
        if let note = try Tokenizer(directory: model).warning { FileHandle.standardError.write(Data("warning: \(note)\n".utf8)) }
        let report = try plugin?.predict(request) ?? SentenceEncoder.predict(request)
        guard request.setup.processes.isMain else { return }
        let summary = "wrote \(report.examples) predictions to \(output == "-" ? "standard output" : output) (model: \(String(format: "%.2f", report.seconds)) s, \(String(format: "%.1f", Double(report.examples) / max(report.seconds, 1e-9))) examples/s)\n"
        // Standard output holds only the results when they go there.
        (output == "-" ? FileHandle.standardError : FileHandle.standardOutput).write(Data(summary.utf8))
    }
}

extension InputFormat: ExpressibleByArgument {}
