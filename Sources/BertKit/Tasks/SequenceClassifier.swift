import Foundation

/// `BertForSequenceClassification`: the encoder, then dropout on the pooled `[CLS]` output and one linear
/// layer (`classifier`) giving a logit per label; cross-entropy loss, or mean squared error when there is a
/// single output (regression).
public final class SequenceClassifier {
    public let config: BertConfig
    public let outputs: Int
    public let parameters: ParameterStore
    public let encoder: BertEncoder
    let classifier: Linear
    let dropoutProbability: Float

    /// `[batch, outputs]` logits of the last forward pass.
    public let logits: UnsafeMutablePointer<Float>
    private let dropped: UnsafeMutablePointer<Float>
    private let mask: UnsafeMutablePointer<UInt8>
    private let dLogits: UnsafeMutablePointer<Float>
    private let dPooled: UnsafeMutablePointer<Float>
    private let pool = BufferPool()
    private var batchSize = 0
    private var dropout = DropoutMode.evaluation

    public var isRegression: Bool { outputs == 1 }

    public static func parameters(_ config: BertConfig, outputs: Int) -> [ParameterDeclaration] {
        BertEncoder.parameters(config, pooler: true) + Linear.declare("classifier", in: config.hiddenSize, out: outputs)
    }

    /// The head's own parameters, new when fine-tuning starts from a pre-trained encoder.
    public static func isHeadParameter(_ name: String) -> Bool { name.hasPrefix("classifier.") }

    public init(config: BertConfig, outputs: Int, maxBatch: Int, maxLength: Int) {
        self.config = config
        self.outputs = outputs
        parameters = ParameterStore(Self.parameters(config, outputs: outputs))
        encoder = BertEncoder(config: config, store: parameters, maxBatch: maxBatch, maxLength: maxLength)
        classifier = Linear("classifier", in: parameters)
        dropoutProbability = config.hiddenDropoutProb
        let h = config.hiddenSize
        logits = pool.floats(maxBatch * outputs)
        dropped = pool.floats(maxBatch * h)
        mask = pool.bytes(maxBatch * h)
        dLogits = pool.floats(maxBatch * outputs)
        dPooled = pool.floats(maxBatch * h)
    }

    public func forward(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        self.dropout = dropout
        batchSize = batch.batchSize
        encoder.forward(batch, dropout: dropout)
        let count = batchSize * config.hiddenSize
        Dropout.forward(encoder.pooledOutput, dropped, mask: mask, count: count,
                        probability: dropout.probability(dropoutProbability), seed: dropout.seed(site: 1 << 20))
        classifier.forward(dropped, logits, rows: batchSize)
    }

    /// The mean loss of the last forward pass against `targets`; also prepares dL/dlogits, times `scale`,
    /// for `backward()`.
    public func loss(_ targets: [Target], scale: Float = 1) -> Double {
        precondition(targets.count == batchSize)
        var total = 0.0
        let n = Float(batchSize)
        for (b, target) in targets.enumerated() {
            let z = logits + b * outputs, dz = dLogits + b * outputs
            switch target {
            case .value(let y):
                precondition(isRegression, "a regression target for a classifier")
                let difference = z[0] - y
                total += Double(difference * difference)
                dz[0] = scale * 2 * difference / n
            case .label(let y):
                precondition(!isRegression && y < outputs, "label \(y) for \(outputs) outputs")
                var maximum = -Float.infinity
                for c in 0..<outputs { maximum = max(maximum, z[c]) }
                var sum: Float = 0
                for c in 0..<outputs { sum += FastMath.exp(z[c] - maximum) }
                let logSum = maximum + Foundation.log(sum)
                total += Double(logSum - z[y])
                for c in 0..<outputs {
                    let probability = FastMath.exp(z[c] - logSum)
                    dz[c] = scale * (probability - (c == y ? 1 : 0)) / n
                }
            }
        }
        return total / Double(batchSize)
    }

    /// Back-propagates the loss prepared by `loss(_:scale:)` into every parameter's gradient.
    public func backward() {
        let count = batchSize * config.hiddenSize
        classifier.backward(input: dropped, dOutput: dLogits, rows: batchSize, dInput: dPooled)
        Dropout.backward(dPooled, dPooled, mask: mask, count: count, probability: dropout.probability(dropoutProbability))
        encoder.backward(dSequenceOutput: nil, dPooledOutput: dPooled)
    }

    /// The predicted class (or value) of each sequence of the last forward pass.
    public func predictions() -> [Target] {
        (0..<batchSize).map { b in
            let z = logits + b * outputs
            if isRegression { return .value(z[0]) }
            var best = 0
            for c in 1..<outputs where z[c] > z[best] { best = c }
            return .label(best)
        }
    }
}
