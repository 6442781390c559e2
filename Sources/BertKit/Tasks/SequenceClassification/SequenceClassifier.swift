/// `BertForSequenceClassification`: the encoder, then dropout on the pooled `[CLS]` output and one linear
/// layer (`classifier`) giving a logit per label (RoBERTa's: its own dense layer and tanh on `<s>`, named
/// `classifier.dense`, then `classifier.out_proj`, as `BertPooler` and `EncoderFamily` describe); cross-entropy loss, mean squared error when there is a single
/// output (regression), or binary cross-entropy of every label (multi-label, `loss(multiLabel:scale:)`).
public final class SequenceClassifier {
    public let config: BertConfig
    public let outputs: Int
    public let parameters: ParameterStore
    public let encoder: BertEncoder
    let classifier: OutputLayer

    /// `[batch, outputs]` logits of the last forward pass.
    public let logits: UnsafeMutablePointer<Float>
    private let dLogits: UnsafeMutablePointer<Float>
    private let targetLabels: UnsafeMutablePointer<Int32>
    private let targetValues: UnsafeMutablePointer<Float>
    /// Each class's weight in the cross-entropy (nil: all 1).
    private let classWeights: UnsafeMutablePointer<Float>?
    private var batchSize = 0
    private var dropout = DropoutMode.evaluation

    public var isRegression: Bool { outputs == 1 }

    /// Whether the encoder's last layer computes the `[CLS]` rows only (`BertEncoder.forwardPooledOnly`), the
    /// only rows the head reads: the same logits and gradients for less work. Off only to check exactly that.
    package var lastLayerFirstTokensOnly = true

    public static func parameters(_ config: BertConfig, outputs: Int) -> [ParameterDeclaration] {
        BertEncoder.parameters(config, pooler: true)
            + Linear.declare(config.family.classificationNames.output, in: config.hiddenSize, out: outputs)
    }

    /// The head's own parameters, new when fine-tuning starts from a pre-trained encoder (RoBERTa's dense layer
    /// among them; BERT's pooler comes with the encoder).
    public static func isHeadParameter(_ name: String) -> Bool { name.hasPrefix("classifier.") }

    /// Built for the context's batches and precision; `classWeights`, one per output, weigh the classes in the
    /// cross-entropy (`ClassWeights`).
    public init(config: BertConfig, outputs: Int, context: BuildContext, classWeights: [Float]? = nil) {
        let (maxBatch, pool) = (context.maxBatch, context.pool)
        self.config = config
        self.outputs = outputs
        parameters = ParameterStore(Self.parameters(config, outputs: outputs))
        encoder = BertEncoder(config: config, store: parameters, context: context)
        classifier = OutputLayer(config.family.classificationNames.output, in: parameters, dropoutProbability: config.hiddenDropoutProb,
                                 maxRows: maxBatch, context: context)
        logits = pool.floats(maxBatch * outputs)
        dLogits = pool.floats(maxBatch * outputs)
        targetLabels = pool.int32s(maxBatch)
        targetValues = pool.floats(maxBatch * outputs)
        precondition(classWeights.map { $0.count == outputs } ?? true, "\(classWeights!.count) class weights for \(outputs) classes")
        self.classWeights = classWeights.map(pool.floats(copying:))
    }

    /// The logits of `batch`, for training (with dropout, then `loss` and `backward`) or prediction.
    public func forward(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        self.dropout = dropout
        batchSize = batch.batchSize
        if lastLayerFirstTokensOnly {
            encoder.forwardPooledOnly(batch, dropout: dropout)
        } else {
            encoder.forward(batch, dropout: dropout)
        }
        classifier.forward(encoder.pooledOutput, logits, rows: batchSize, dropout: dropout)
    }

    /// The mean loss of the last forward pass against `targets`; also prepares dL/dlogits, times `scale`,
    /// for `backward()`. `normalizer` is the mean's denominator when these sequences are a share of a larger
    /// batch (`normalizer(_:)` of its targets).
    public func loss(_ targets: [Target], scale: Float = 1, normalizer: Double? = nil) -> Double {
        precondition(targets.count == batchSize)
        if isRegression {
            for b in targets.indices {
                guard case .value(let y) = targets[b] else { preconditionFailure("a class label for a regression head") }
                targetValues[b] = y
            }
            return MeanSquaredError.forwardBackward(predictions: logits, targets: targetValues, rows: batchSize,
                                                    normalizer: normalizer.map { Int($0) }, scale: scale, dPredictions: dLogits)
        }
        for b in targets.indices {
            guard case .label(let y) = targets[b], y < outputs else {
                preconditionFailure("target \(targets[b]) for \(outputs) classes")
            }
            targetLabels[b] = Int32(y)
        }
        return CrossEntropy.forwardBackward(logits: logits, targets: targetLabels, rows: batchSize, classes: outputs,
                                            weights: classWeights, normalizer: normalizer, scale: scale, dLogits: dLogits)
    }

    /// The denominator of the mean loss over a batch with these targets: their number, or the sum of their
    /// classes' weights.
    public func normalizer(_ targets: [Target]) -> Double {
        guard !isRegression else { return Double(targets.count) }
        return CrossEntropy.count(targets.lazy.map { target -> Int32 in
            guard case .label(let y) = target else { preconditionFailure("a value for a classification head") }
            return Int32(y)
        }, weights: classWeights)
    }

    /// Multi-label classification: the mean binary cross-entropy of every label's logit of the last forward
    /// pass against `targets` (each sequence's labels, as indices); prepares dL/dlogits, times `scale`. When
    /// these sequences are a share of a larger batch, `batchSize` is that batch's (the mean is over its logits).
    public func loss(multiLabel targets: [[Int]], scale: Float = 1, batchSize wholeBatch: Int? = nil) -> Double {
        precondition(targets.count == batchSize)
        targetValues.update(repeating: 0, count: batchSize * outputs)
        for (b, labels) in targets.enumerated() {
            for label in labels { targetValues[b * outputs + label] = 1 }
        }
        return BinaryCrossEntropy.forwardBackward(logits: logits, targets: targetValues, count: batchSize * outputs,
                                                  normalizer: wholeBatch.map { $0 * outputs }, scale: scale, dLogits: dLogits)
    }

    /// Back-propagates the loss prepared by `loss` into every parameter's gradient.
    public func backward() {
        classifier.backward(dOutput: dLogits, rows: batchSize, dropout: dropout)
        encoder.backward(dSequenceOutput: nil, dPooledOutput: classifier.dInput)
    }

    /// The predicted class (or value) of each sequence of the last forward pass.
    public func predictions() -> [Target] {
        (0..<batchSize).map { b in
            let z = logits + b * outputs
            return isRegression ? .value(z[0]) : .label(argmax(z, count: outputs))
        }
    }
}
