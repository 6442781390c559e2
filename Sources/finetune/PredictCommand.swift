import ArgumentParser
import BertKit
import Foundation

/// `finetune predict`: runs a fine-tuned model over a TSV or JSONL file and writes one prediction per line.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict with a fine-tuned model (an exported folder) over a TSV or JSONL file.",
        discussion: """
            TSV input uses the columns of a task's split (--task, --split; default: the test split).
            JSONL input has one object per line with "text" (or "sentence1") and, for pairs, "text_pair" (or "sentence2").
            Output is TSV: index, prediction (the label name, or the value for regression), then one score per label.
            """)

    @Option(help: "Fine-tuned model folder (from `finetune export` or a run's best/).") var model: String
    @Option(help: "Input file, .tsv or .jsonl.") var input: String
    @Option(help: "Output TSV file.") var output: String
    @Option(help: "Task whose split describes the TSV columns.") var task: String?
    @Option(help: "Split of the task that describes the TSV columns.") var split = "test"
    @Option(help: "Maximum tokens per sequence.") var maxLength = 128
    @Option(help: "Sequences per batch.") var batchSize = 32
    @Option(help: "Number format of matrix products: fp32, or bf16 (bf16 inputs, fp32 accumulation).") var precision = Precision.float32

    func run() throws {
        let checkpoint = try BertCheckpoint(directory: model)
        let tokenizer = try BertTokenizer(directory: model)
        let architectures = try checkpoint.rawConfig()["architectures"] as? [String] ?? []
        guard architectures.contains("BertForSequenceClassification") else {
            throw ValidationError("""
                \(model) is a \(architectures.first ?? "model without architectures"); predict runs BertForSequenceClassification \
                models (token classification runs write predictions-dev.txt and predictions-test.txt into their run folder)
                """)
        }
        let labels = try checkpoint.labelNames()
        let regression = try checkpoint.problemType() == "regression"
        guard let labels, !labels.isEmpty else {
            throw ValidationError("\(model)/config.json has no id2label: is this a fine-tuned classification model?")
        }
        if precision == .bfloat16, !Gemm.hasNativeBFloat16 {
            FileHandle.standardError.write(Data("warning: \(Precision.emulatedBFloat16Note)\n".utf8))
        }
        let texts = try readInputs()
        let encodings = texts.map { tokenizer.encode($0.0, pair: $0.1, maxLength: maxLength) }
        let outputs = regression ? 1 : labels.count
        let classifier = SequenceClassifier(config: checkpoint.config, outputs: outputs, maxBatch: batchSize,
                                            maxLength: encodings.map(\.count).max() ?? 1, precision: precision)
        _ = try checkpoint.loadWeights(into: classifier.parameters)

        // Batches of similar length waste less work on padding; the output keeps the input's order.
        let order = encodings.indices.sorted { encodings[$0].count < encodings[$1].count }
        var rows = [String](repeating: "", count: encodings.count)
        let started = ContinuousClock.now
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let chunk = order[start..<min(start + batchSize, order.count)].map { encodings[$0] }
            classifier.forward(EncoderBatch(padding: chunk.map(\.ids), typeIds: chunk.map(\.typeIds), padId: tokenizer.padId))
            for (row, prediction) in classifier.predictions().enumerated() {
                let index = order[start + row]
                let logits = (0..<outputs).map { classifier.logits[row * outputs + $0] }
                switch prediction {
                case .value(let v): rows[index] = "\(index)\t\(v)"
                case .label(let l): rows[index] = "\(index)\t\(labels[l])" + logits.map { "\t\($0)" }.joined()
                }
            }
        }
        let lines = ["index\tprediction" + (regression ? "" : labels.map { "\t" + $0 }.joined())] + rows
        let elapsed = started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: output)
        print("wrote \(encodings.count) predictions to \(output) (model: \(String(format: "%.2f", seconds)) s, \(String(format: "%.1f", Double(encodings.count) / seconds)) examples/s)")
    }

    func readInputs() throws -> [(String, String?)] {
        if input.hasSuffix(".jsonl") {
            guard let data = FileManager.default.contents(atPath: input) else { throw DataError(file: input, "file not found") }
            let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            var texts: [(String, String?)] = []
            for (number, line) in lines.enumerated() where !line.allSatisfy({ $0 == 32 || $0 == 13 }) {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                    throw DataError(file: input, line: number + 1, "expected a JSON object")
                }
                guard let a = (object["text"] ?? object["sentence1"] ?? object["sentence"]) as? String else {
                    throw DataError(file: input, line: number + 1, "expected a \"text\" (or \"sentence1\") string field")
                }
                texts.append((a, (object["text_pair"] ?? object["sentence2"]) as? String))
            }
            guard !texts.isEmpty else { throw DataError(file: input, "has no examples") }
            return texts
        }
        guard let task else { throw ValidationError("a TSV input needs --task to say which columns hold the texts") }
        let spec = try TaskSpec.load(task)
        return try spec.examples(split, file: input).map { ($0.textA, $0.textB) }
    }
}
