import ArgumentParser
import BertKit
import Foundation

/// `finetune predict`: runs a fine-tuned model over an input and writes one prediction per example, with the
/// plugin that the model folder's architecture names.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict with a fine-tuned model (an exported folder or a run's best/) over text, JSONL, TSV or CoNLL input.",
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
            --input - reads standard input line by line (JSONL, or text with --format text) and writes each result to \
            standard output as soon as it is ready.
            """)

    @Option(help: "Fine-tuned model folder (from `finetune export` or a run's best/).") var model: String
    @Option(help: "Input file, or - for standard input.") var input: String
    @Option(help: "Output file (written whole, then renamed into place), or - for standard output.") var output = "-"
    @Option(help: "Input format: text, jsonl, tsv or conll (default: from the input's name; text for other names, jsonl for -).")
    var format: InputFormat?
    @Option(help: "Task whose split describes the TSV columns.") var task: String?
    @Option(help: "Split of the task that describes the TSV columns.") var split = "test"
    @Option(help: "Tokens per window (default: 384 for question answering, else 128; at most the model's positions).")
    var maxLength: Int?
    @Option(help: "Tokens that consecutive windows of a long text share (default: half a window, at most 128).")
    var windowOverlap: Int?
    @Option(help: "Sequences per batch.") var batchSize = 32
    @Option(help: "Number format of matrix products: fp32, bf16 (bf16 inputs, fp32 accumulation), or int8 (products with weights in int8, dynamic quantisation).") var precision = Precision.float32
    @Option(help: "Multi-label: predict a label when its probability reaches this (default: the model's own, else 0.5).")
    var threshold: Double?
    @Option(help: "Token classification: how sub-tokens make words: simple, first, average or max.")
    var aggregation = EntityAggregation.first
    @Option(help: "Question answering: answers listed (default 1); fill-mask: fillers per mask (default 5).") var topK: Int?
    @Option(help: "Question answering: the longest answer, in tokens.") var maxAnswerLength = 15
    @Flag(help: "Question answering (SQuAD 2.0-style models): the empty answer competes with the spans.") var allowNoAnswer = false
    @Option(help: "Question answering: the empty answer wins only when its score beats the best span's by more than this.")
    var nullThreshold = 0.0

    func run() throws {
        var request = try PredictionRequest(model: model, input: input, output: output)
        request.format = format
        request.task = try task.map { try TaskSpec.load($0) }
        request.split = split
        request.maxLength = maxLength
        request.windowOverlap = windowOverlap
        request.batchSize = batchSize
        request.precision = precision
        request.threshold = threshold
        request.aggregation = aggregation
        request.topK = topK
        request.maxAnswerLength = maxAnswerLength
        request.allowNoAnswer = allowNoAnswer
        request.nullThreshold = nullThreshold
        request.processes = ProcessGroup.current
        let plugin = try request.plugin()
        if let note = precision.hardwareNote { FileHandle.standardError.write(Data("warning: \(note)\n".utf8)) }
        let report = try plugin.predict(request)
        guard request.processes.isMain else { return }
        let summary = "wrote \(report.examples) predictions to \(output == "-" ? "standard output" : output) (model: \(String(format: "%.2f", report.seconds)) s, \(String(format: "%.1f", Double(report.examples) / max(report.seconds, 1e-9))) examples/s)\n"
        // Standard output holds only the results when they go there.
        (output == "-" ? FileHandle.standardError : FileHandle.standardOutput).write(Data(summary.utf8))
    }
}

extension InputFormat: ExpressibleByArgument {}
extension EntityAggregation: ExpressibleByArgument {}
