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

    /// `[rows, labels]` logits of the last forward pass: row `t` for token `t` (every padded position), or
    /// one row per scored token after `forward(_:scoring:dropout:)` (`prediction(token:)` finds a token's).
    public let logits: UnsafeMutablePointer<Float>
    private let dLogits: UnsafeMutablePointer<Float>
    /// Each token's row of `logits`, -1 for a token the last forward pass did not score.
    private let tokenRows: UnsafeMutablePointer<Int32>
    /// The scored tokens' labels, in `logits`' rows, for the loss.
    private let targets: UnsafeMutablePointer<Int32>
    /// Each label's weight in the cross-entropy (nil: all 1).
    private let classWeights: UnsafeMutablePointer<Float>?
    private var tokens = 0
    /// The padded length of the last forward pass's sequences.
    private var length = 0
    /// The tokens the last forward pass scored, when not every one.
    private var scored: SelectedRows?
    private var rows: Int { scored?.count ?? tokens }
    private var dropout = DropoutMode.evaluation

    public static func parameters(_ config: BertConfig, labels: Int) -> [ParameterDeclaration] {
        BertEncoder.parameters(config, pooler: false) + Linear.declare("classifier", in: config.hiddenSize, out: labels)
    }

    public static func isHeadParameter(_ name: String) -> Bool { name.hasPrefix("classifier.") }

    /// Built for the context's batches and precision; `classWeights`, one per label, weigh the labels in the
    /// cross-entropy (`ClassWeights`).
    public init(config: BertConfig, labels: Int, context: BuildContext, classWeights: [Float]? = nil) {
        let pool = context.pool
        self.config = config
        self.labels = labels
        parameters = ParameterStore(Self.parameters(config, labels: labels))
        encoder = BertEncoder(config: config, store: parameters, pooler: false, context: context)
        let n = context.maxTokens
        classifier = OutputLayer("classifier", in: parameters, dropoutProbability: config.hiddenDropoutProb, maxRows: n,
                                 context: context)
        logits = pool.floats(n * labels)
        dLogits = pool.floats(n * labels)
        tokenRows = pool.int32s(n)
        targets = pool.int32s(n)
        precondition(classWeights.map { $0.count == labels } ?? true, "\(classWeights!.count) class weights for \(labels) labels")
        self.classWeights = classWeights.map(pool.floats(copying:))
    }

    /// The logits of every token of `batch`.
    public func forward(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        encoder.forward(batch, dropout: dropout)
        classify(batch, dropout: dropout)
    }

    /// The logits of the tokens `scored(b · T + t)` accepts alone (the labelled ones in training, the words'
    /// first tokens in prediction), the same as among every token's for less work: the encoder's last layer
    /// computes those rows only, and every layer the real tokens only (`BertEncoder.forward(_:lastLayerRowsWhere:
    /// dropout:)`).
    public func forward(_ batch: EncoderBatch, scoring scored: (Int) -> Bool, dropout: DropoutMode = .evaluation) {
        encoder.forward(batch, lastLayerRowsWhere: scored, dropout: dropout)
        classify(batch, dropout: dropout)
    }

    /// The output layer over the encoder's last rows.
    private func classify(_ batch: EncoderBatch, dropout: DropoutMode) {
        self.dropout = dropout
        tokens = batch.tokenCount
        length = batch.sequenceLength
        scored = encoder.lastLayerRows
        if let scored {
            tokenRows.update(repeating: -1, count: tokens)
            for row in 0..<scored.count { tokenRows[Int(scored.positions[row])] = Int32(row) }
        } else {
            for t in 0..<tokens { tokenRows[t] = Int32(t) }
        }
        classifier.forward(encoder.sequenceOutput, logits, rows: rows, rowsPerSequence: length, selected: scored,
                           dropout: dropout)
    }

    /// Mean cross-entropy over the tokens whose label is not `ignored` (`tokenLabels` has one per token, scored
    /// or not; an unscored token's must be `ignored`); prepares dL/dlogits (times `scale`). `normalizer` is the
    /// mean's denominator when these sequences are a share of a larger batch (`normalizer(_:)` of its token
    /// labels).
    public func loss(_ tokenLabels: [Int32], scale: Float = 1, normalizer: Double? = nil) -> Double {
        precondition(tokenLabels.count == tokens)
        for (t, label) in tokenLabels.enumerated() {
            let row = Int(tokenRows[t])
            if row >= 0 {
                targets[row] = label
            } else {
                precondition(label == Self.ignored, "token \(t) has label \(label) but the forward pass did not score it")
            }
        }
        return CrossEntropy.forwardBackward(logits: logits, targets: targets, rows: rows, classes: labels,
                                            ignored: Self.ignored, weights: classWeights, normalizer: normalizer,
                                            scale: scale, dLogits: dLogits)
    }

    /// The denominator of the mean loss over a batch with these token labels: the labelled tokens, or the sum
    /// of their labels' weights.
    public func normalizer(_ tokenLabels: some Sequence<Int32>) -> Double {
        CrossEntropy.count(tokenLabels, ignored: Self.ignored, weights: classWeights)
    }

    public func backward() {
        classifier.backward(dOutput: dLogits, rows: rows, rowsPerSequence: length, selected: scored, dropout: dropout)
        encoder.backward(dSequenceOutput: classifier.dInput, dPooledOutput: nil)
    }

    /// The most likely label of token `t` (`b · T + t`) of the last forward pass, which must have scored it.
    public func prediction(token t: Int) -> Int {
        let row = Int(tokenRows[t])
        precondition(row >= 0, "token \(t) was not scored by the last forward pass")
        return argmax(logits + row * labels, count: labels)
    }
}
