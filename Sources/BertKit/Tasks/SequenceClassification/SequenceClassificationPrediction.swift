import Foundation

extension SequenceClassificationTask {
    /// Classifies every text (or pair) of the input. JSONL output (transformers' text-classification pipeline
    /// with every label's score): `label`, its `score` and `scores` by label, the softmax of the logits; for
    /// regression, `value`. TSV output (`--output` ending in `.tsv`): index, the predicted label (or value), then
    /// one logit per label.
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        let setup = request.setup
        let regression = try setup.checkpoint.problemType() == "regression"
        let labels = regression ? [] : try setup.labels(of: "classification")
        let outputs = regression ? 1 : labels.count
        if request.output.hasSuffix(".tsv") {
            return try ClassificationPredictor(setup, outputs: outputs, header: "index\tprediction" + labels.map { "\t" + $0 }.joined(), line: { index, z in
                regression ? "\(index)\t\(z[0])" : "\(index)\t\(labels[z.indices.max { z[$0] < z[$1] }!])" + z.map { "\t\($0)" }.joined()
            }).run(request)
        }
        return try ClassificationPredictor(setup, outputs: outputs, line: jsonLine(labels: labels, regression: regression)).run(request)
    }

    /// A JSONL output line from a text's logits: the classification's fields, or a regression's `value`.
    static func jsonLine(labels: [String], regression: Bool) -> (Int, [Float]) -> String {
        { _, z in JSONOutput.line(regression ? ["value": Double(z[0])] : TextClassification(logits: z, labels: labels).json) }
    }
}

/// A `BertForSequenceClassification` model over texts and pairs: a JSONL record's `text` (or `sentence1`,
/// `sentence`) and `text_pair` (or `sentence2`), a text line, or a task split's TSV columns; one line per text,
/// made by `line` from its index and logits.
struct ClassificationPredictor: Predictor {
    let tokenizer: Tokenizer
    let classifier: SequenceClassifier
    var parameters: ParameterStore { classifier.parameters }
    let outputs, maxLength, batchSize: Int
    let header: String?
    let tsvColumns: ((TaskSpec, String) throws -> TSVLayout)?
    let line: (Int, [Float]) -> String

    init(_ setup: PredictionSetup, outputs: Int, header: String? = nil,
         tsvColumns: @escaping (TaskSpec, String) throws -> TSVLayout = { try $0.layout(of: $1, as: TSVLayout.self) },
         line: @escaping (Int, [Float]) -> String) throws {
        tokenizer = try Tokenizer(directory: setup.model)
        maxLength = setup.sequenceLength()
        batchSize = setup.batchSize
        classifier = SequenceClassifier(config: setup.checkpoint.config, outputs: outputs,
                                        context: try setup.buildContext(maxLength: maxLength))
        _ = try setup.checkpoint.loadWeights(into: classifier.parameters)
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

    /// The logits.
    func result(of example: (index: Int, encoding: Encoding), outputs: [[Float]]) -> [Float] { outputs[0] }

    func line(_ logits: [Float], of example: (index: Int, encoding: Encoding)) -> String { line(example.index, logits) }
}
