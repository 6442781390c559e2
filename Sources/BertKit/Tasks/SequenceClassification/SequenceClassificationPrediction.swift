import Foundation

extension SequenceClassificationTask {
    /// Classifies every text (or pair) of a TSV file (columns of a task's split) or a JSONL file (`text`, or
    /// `sentence1`, and `text_pair`, or `sentence2`) and writes TSV: index, the predicted label (or value), then
    /// one logit per label, in input order.
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        let regression = try request.checkpoint.problemType() == "regression"
        let labels = try classLabels(request)
        let outputs = regression ? 1 : labels.count
        return try classify(request, outputs: outputs, header: "index\tprediction" + (regression ? "" : labels.map { "\t" + $0 }.joined())) { index, z in
            regression ? "\(index)\t\(z[0])" : "\(index)\t\(labels[argmax(z, count: outputs)])" + (0..<outputs).map { "\t\(z[$0])" }.joined()
        }
    }

    /// The label names of a fine-tuned classification model, or an error naming its config.json.
    static func classLabels(_ request: PredictionRequest) throws -> [String] {
        guard let labels = try request.checkpoint.labelNames(), !labels.isEmpty else {
            throw DataError(file: request.model + "/config.json", "has no id2label: is this a fine-tuned classification model?")
        }
        return labels
    }

    /// Runs a `BertForSequenceClassification` model with `outputs` logits over the request's texts (a TSV file's
    /// columns read by `columns`), batched by length, and writes `header` then one line per text, made by `line`
    /// from its index and logits, in input order.
    static func classify(_ request: PredictionRequest, outputs: Int, header: String,
                         columns: (TaskSpec, String) throws -> TSVLayout = { try $0.layout(of: $1, as: TSVLayout.self) },
                         line: (Int, UnsafePointer<Float>) -> String) throws -> PredictionReport {
        let checkpoint = request.checkpoint
        let tokenizer = try BertTokenizer(directory: request.model)
        let encodings = try texts(request, columns: columns).map { tokenizer.encode($0.0, pair: $0.1, maxLength: request.maxLength) }
        let classifier = SequenceClassifier(config: checkpoint.config, outputs: outputs, maxBatch: request.batchSize,
                                            maxLength: encodings.map(\.count).max() ?? 1, precision: request.precision)
        _ = try checkpoint.loadWeights(into: classifier.parameters)
        var lines = [String](repeating: "", count: encodings.count)
        let started = ContinuousClock.now
        for indices in Batches.byLength(encodings.map(\.count), batchSize: request.batchSize) {
            classifier.forward(EncoderBatch(padding: indices.map { encodings[$0].ids }, typeIds: indices.map { encodings[$0].typeIds },
                                            padId: tokenizer.padId))
            for (row, index) in indices.enumerated() { lines[index] = line(index, classifier.logits + row * outputs) }
        }
        let elapsed = started.duration(to: .now)
        try AtomicFile.write(Data(([header] + lines).map { $0 + "\n" }.joined().utf8), to: request.output)
        return PredictionReport(examples: encodings.count,
                                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }

    /// The texts and pairs of the input file; a TSV file's columns are those of a split of the request's task,
    /// in the layout `columns` reads from it.
    static func texts(_ request: PredictionRequest,
                      columns: (TaskSpec, String) throws -> TSVLayout = { try $0.layout(of: $1, as: TSVLayout.self) }) throws -> [(String, String?)] {
        if request.input.hasSuffix(".jsonl") {
            return try JSONLines.read(path: request.input).map { line, object in
                guard let a = (object["text"] ?? object["sentence1"] ?? object["sentence"]) as? String else {
                    throw DataError(file: request.input, line: line, "expected a \"text\" (or \"sentence1\") string field")
                }
                return (a, (object["text_pair"] ?? object["sentence2"]) as? String)
            }
        }
        guard let task = request.task else { throw UsageError("a TSV input needs --task to say which columns hold the texts") }
        return try columns(task, request.split).rows(path: request.input).map { ($0.textA, $0.textB) }
    }
}
