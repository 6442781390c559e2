/// `BertForTokenClassification`: the encoder (without pooler), then dropout and one linear layer
/// (`classifier`) giving a logit per label at every token; cross-entropy over the labelled tokens only.
public final class TokenClassifier {
    /// Label of a token that takes no part in the loss (padding, special tokens, later sub-tokens of a word).
    public static let ignored: Int32 = -100

    public let config: BertConfig
    public let labels: Int
    public let parameters: ParameterStore
    public let encoder: BertEncoder
    let classifier: OutputLayer

    /// `[tokens, labels]` logits of the last forward pass, for every (padded) position.
    public let logits: UnsafeMutablePointer<Float>
    private let dLogits: UnsafeMutablePointer<Float>
    /// Each label's weight in the cross-entropy (nil: all 1).
    private let classWeights: UnsafeMutablePointer<Float>?
    private let pool = BufferPool()
    private var tokens = 0
    /// The padded length of the last forward pass's sequences.
    private var length = 0
    private var dropout = DropoutMode.evaluation

    public static func parameters(_ config: BertConfig, labels: Int) -> [ParameterDeclaration] {
        BertEncoder.parameters(config, pooler: false) + Linear.declare("classifier", in: config.hiddenSize, out: labels)
    }

    public static func isHeadParameter(_ name: String) -> Bool { name.hasPrefix("classifier.") }

    /// `precision` is the number format of every matrix product's inputs (see `BertEncoder`); `classWeights`, one
    /// per label, weigh the labels in the cross-entropy (`ClassWeights`).
    public init(config: BertConfig, labels: Int, maxBatch: Int, maxLength: Int, precision: Precision = .float32,
                classWeights: [Float]? = nil) {
        self.config = config
        self.labels = labels
        parameters = ParameterStore(Self.parameters(config, labels: labels))
        encoder = BertEncoder(config: config, store: parameters, maxBatch: maxBatch, maxLength: maxLength, pooler: false,
                              precision: precision)
        let n = maxBatch * maxLength
        classifier = OutputLayer("classifier", in: parameters, dropoutProbability: config.hiddenDropoutProb, maxRows: n,
                                 precision: precision, pool: pool)
        logits = pool.floats(n * labels)
        dLogits = pool.floats(n * labels)
        precondition(classWeights.map { $0.count == labels } ?? true, "\(classWeights!.count) class weights for \(labels) labels")
        self.classWeights = classWeights.map(pool.floats(copying:))
    }

    public func forward(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        self.dropout = dropout
        tokens = batch.tokenCount
        length = batch.sequenceLength
        encoder.forward(batch, dropout: dropout)
        classifier.forward(encoder.sequenceOutput, logits, rows: tokens, rowsPerSequence: length, dropout: dropout)
    }

    /// Mean cross-entropy over the tokens whose label is not `ignored`; prepares dL/dlogits (times `scale`).
    /// `normalizer` is the mean's denominator when these sequences are a share of a larger batch
    /// (`normalizer(_:)` of its token labels).
    public func loss(_ tokenLabels: [Int32], scale: Float = 1, normalizer: Double? = nil) -> Double {
        precondition(tokenLabels.count == tokens)
        return tokenLabels.withUnsafeBufferPointer { targets in
            CrossEntropy.forwardBackward(logits: logits, targets: targets.baseAddress!, rows: tokens, classes: labels,
                                         ignored: Self.ignored, weights: classWeights, normalizer: normalizer,
                                         scale: scale, dLogits: dLogits)
        }
    }

    /// The denominator of the mean loss over a batch with these token labels: the labelled tokens, or the sum
    /// of their labels' weights.
    public func normalizer(_ tokenLabels: some Sequence<Int32>) -> Double {
        CrossEntropy.count(tokenLabels, ignored: Self.ignored, weights: classWeights)
    }

    public func backward() {
        classifier.backward(dOutput: dLogits, rows: tokens, rowsPerSequence: length, dropout: dropout)
        encoder.backward(dSequenceOutput: classifier.dInput, dPooledOutput: nil)
    }

    /// The most likely label of token `t` of the last forward pass.
    public func prediction(token t: Int) -> Int {
        argmax(logits + t * labels, count: labels)
    }
}
