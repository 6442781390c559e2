// The worked example of the guide "Adding a task, a head or a hyper-parameter" (Sources/BertKit/BertKit.docc/Extending.md):
// everything below this comment stands there verbatim (ExamplePluginTests checks it), and ExamplePluginTests trains it.
import BertKit
import Foundation

/// A new head: one logit per sequence on the pooled `[CLS]` output, read through a sigmoid as the probability
/// of label 1 and trained with binary cross-entropy. Its task files say `"plugin": "binary-classification"`
/// and lay their splits out as sequence classification's do (`TSVLayout`), with the labels "0" and "1".
final class BinaryClassificationTask: TaskPlugin {
    typealias Split = TSVLayout
    static let name = "binary-classification"
    static let architecture = "BertForBinaryClassification"
    static let metrics: Set<String> = ["accuracy"]

    let parameters: ParameterStore
    let loadReport: LoadReport
    let mainMetric: String
    var trainingLengths: [Int] { training.map(\.ids.count) }
    var dataSummary: String { "\(training.count) training and \(evaluation.count) evaluation examples" }
    private let training, evaluation: [(ids: [Int32], typeIds: [Int32], label: Float)]
    private let setup: TaskSetup
    private let tokenizer: Tokenizer
    private let encoder: BertEncoder
    private let classifier: OutputLayer
    /// What the model is built for: its largest batch and precision, and the pool that owns the buffers of the
    /// encoder, the output layer and the logits for as long as the task lives.
    private let context: BuildContext
    private let logits, dLogits: UnsafeMutablePointer<Float>

    init(_ setup: TaskSetup) throws {
        let h = setup.hyperparameters, config = setup.checkpoint.config
        let tokenizer = try setup.tokenizer()
        func examples(_ split: String) throws -> [(ids: [Int32], typeIds: [Int32], label: Float)] {
            let (layout, file, _) = try setup.split(split, as: TSVLayout.self)
            return try layout.examples(path: file, labels: ["0", "1"]).map { e in
                let encoding = tokenizer.encode(e.textA, pair: e.textB, maxLength: h[.maxLength])
                return (encoding.ids, encoding.typeIds, e.target == .label(1) ? 1 : 0)
            }
        }
        (training, evaluation) = (try examples("train"), try examples("dev"))
        (self.setup, self.tokenizer, mainMetric) = (setup, tokenizer, setup.spec.mainMetric)
        parameters = ParameterStore(BertEncoder.parameters(config) + Linear.declare("classifier", in: config.hiddenSize, out: 1))
        context = try setup.buildContext(maxLength: h[.maxLength])
        encoder = BertEncoder(config: config, store: parameters, context: context)
        classifier = OutputLayer("classifier", in: parameters, dropoutProbability: config.hiddenDropoutProb,
                                 maxRows: setup.maxBatch, context: context)
        (logits, dLogits) = (context.pool.floats(setup.maxBatch), context.pool.floats(setup.maxBatch))
        loadReport = try setup.checkpoint.loadWeights(into: parameters, mayBeNew: { $0.hasPrefix("classifier.") }, seed: h[.seed])
    }

    /// The logits of some examples, one per sequence, padded to `length` (when they are a share of a batch).
    private func forward(_ rows: [(ids: [Int32], typeIds: [Int32], label: Float)], length: Int? = nil, dropout: DropoutMode) {
        encoder.forward(EncoderBatch(padding: rows.map(\.ids), typeIds: rows.map(\.typeIds), padId: tokenizer.padId,
                                     length: length), dropout: dropout)
        classifier.forward(encoder.pooledOutput, logits, rows: rows.count, dropout: dropout)
    }

    func trainStep(_ share: BatchShare, dropout: DropoutMode, gradientScale: Float) -> Double {
        let training = self.training, rows = share.examples.map { training[$0] }
        forward(rows, length: share.paddedLength { training[$0].ids.count }, dropout: dropout)
        // The mean is over the whole batch, of which these rows are this process's share.
        let n = share.batch.count
        var loss = 0.0
        for (b, row) in rows.enumerated() {
            // Binary cross-entropy of the logit z, in a form that cannot overflow; dL/dz = sigmoid(z) - y.
            let z = logits[b]
            loss += Double(max(z, 0) - z * row.label + log1p(exp(-abs(z))))
            dLogits[b] = (1 / (1 + exp(-z)) - row.label) * gradientScale / Float(n)
        }
        classifier.backward(dOutput: dLogits, rows: rows.count, dropout: dropout)
        encoder.backward(dSequenceOutput: nil, dPooledOutput: classifier.dInput)
        return loss / Double(n)
    }

    /// The evaluation loop batches the examples by length (and shares the batches among processes); this head
    /// gives each example's logit, then scores them.
    func evaluate() throws -> [String: Double] {
        let outputs = try setup.evaluationLoop.outputs(lengths: evaluation.map(\.ids.count)) { batch in
            forward(batch.map { evaluation[$0] }, dropout: .evaluation)
            return (0..<batch.count).map { [Double(logits[$0])] }
        }
        let correct = zip(outputs, evaluation).filter { ($0[0] > 0) == ($1.label == 1) }.count
        return ["accuracy": Double(correct) / Double(evaluation.count)]
    }

    func export(to directory: String) throws {
        try HuggingFaceExport.write(to: directory, baseModel: setup.checkpoint, tokenizer: tokenizer, parameters: parameters,
                                    head: .init(architecture: Self.architecture, config: [:], isHeadParameter: { $0.hasPrefix("classifier.") }))
    }
}
