import Foundation

extension SequenceClassificationTask {
    /// Classifies every text (or pair) of the input. JSONL output (transformers' text-classification pipeline
    /// with every label's score): `label`, its `score` and `scores` by label, the softmax of the logits; for
    /// regression, `value`. TSV output (`--output` ending in `.tsv`): index, the predicted label (or value), then
    /// one logit per label.
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        let regression = try request.checkpoint.problemType() == "regression"
        let labels = regression ? [] : try classLabels(request)
        let outputs = regression ? 1 : labels.count
        if request.output.hasSuffix(".tsv") {
            return try ClassificationPredictor(request, outputs: outputs, header: "index\tprediction" + labels.map { "\t" + $0 }.joined()) { index, z in
                regression ? "\(index)\t\(z[0])" : "\(index)\t\(labels[z.indices.max { z[$0] < z[$1] }!])" + z.map { "\t\($0)" }.joined()
            }.run(request)
        }
        return try ClassificationPredictor(request, outputs: outputs) { _, z in
            if regression { return JSONOutput.line(["value": Double(z[0])]) }
            let p = softmax(z), best = p.indices.max { p[$0] < p[$1] }!
            return JSONOutput.line(["label": labels[best], "score": p[best],
                                    "scores": Dictionary(uniqueKeysWithValues: zip(labels, p))])
        }.run(request)
    }

    /// The label names of a fine-tuned classification model, or an error naming its config.json.
    static func classLabels(_ request: PredictionRequest) throws -> [String] {
        guard let labels = try request.checkpoint.labelNames(), !labels.isEmpty else {
            throw DataError(file: request.model + "/config.json", "has no id2label: is this a fine-tuned classification model?")
        }
        return labels
    }
}

/// A `BertForSequenceClassification` model over texts and pairs: a JSONL record's `text` (or `sentence1`,
/// `sentence`) and `text_pair` (or `sentence2`), a text line, or a task split's TSV columns; one line per text,
/// made by `line` from its index and logits.
struct ClassificationPredictor: Predictor {
    let tokenizer: BertTokenizer
    let classifier: SequenceClassifier
    var parameters: ParameterStore { classifier.parameters }
    let outputs, maxLength, batchSize: Int
    let header: String?
    let tsvColumns: ((TaskSpec, String) throws -> TSVLayout)?
    let line: (Int, [Float]) -> String

    init(_ request: PredictionRequest, outputs: Int, header: String? = nil,
         tsvColumns: @escaping (TaskSpec, String) throws -> TSVLayout = { try $0.layout(of: $1, as: TSVLayout.self) },
         line: @escaping (Int, [Float]) -> String) throws {
        tokenizer = try BertTokenizer(directory: request.model)
        maxLength = request.sequenceLength()
        batchSize = request.batchSize
        classifier = SequenceClassifier(config: request.checkpoint.config, outputs: outputs,
                                        context: try request.buildContext(maxLength: maxLength))
        _ = try request.checkpoint.loadWeights(into: classifier.parameters)
        self.outputs = outputs
        self.header = header
        self.tsvColumns = tsvColumns
        self.line = line
    }

    func prepare(_ record: InputRecord, index: Int) throws -> (index: Int, encoding: Encoding) {
        let text = try record.string("text", "sentence1", "sentence")
        let pair = try record.optionalString("text_pair", "sentence2")
        return (index, tokenizer.encode(text, pair: pair, maxLength: maxLength))
    }

    func sequences(of example: (index: Int, encoding: Encoding)) -> [ModelInput] {
        [ModelInput(ids: example.encoding.ids, typeIds: example.encoding.typeIds)]
    }

    func forward(_ batch: [ModelInput]) -> [[Float]] {
        classifier.forward(EncoderBatch(padding: batch.map(\.ids), typeIds: batch.map(\.typeIds), padId: tokenizer.padId))
        return batch.indices.map { Array(UnsafeBufferPointer(start: classifier.logits + $0 * outputs, count: outputs)) }
    }

    func result(of example: (index: Int, encoding: Encoding), outputs: [[Float]]) -> String {
        line(example.index, outputs[0])
    }
}
