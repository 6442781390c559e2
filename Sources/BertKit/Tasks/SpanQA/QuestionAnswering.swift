/// `BertForQuestionAnswering`: the encoder (without pooler), then one linear layer (`qa_outputs`) giving a
/// start and an end logit per token. Loss: the mean of the cross-entropies of the start and the end position
/// over each sequence's tokens (padding included, as in transformers).
public final class QuestionAnsweringModel {
    public let config: BertConfig
    public let parameters: ParameterStore
    public let encoder: BertEncoder
    let outputs: Linear

    /// `[tokens, 2]` logits of the last forward pass: start, end for each (padded) position.
    public let logits: UnsafeMutablePointer<Float>
    private let dLogits: UnsafeMutablePointer<Float>
    private let dSequence: UnsafeMutablePointer<Float>
    /// One sequence's start (or end) logits side by side, `[batch, T]`, and their gradient.
    private let positionLogits: UnsafeMutablePointer<Float>
    private let dPositionLogits: UnsafeMutablePointer<Float>
    private let positions: UnsafeMutablePointer<Int32>
    private var batchSize = 0
    private var length = 0

    public static func parameters(_ config: BertConfig) -> [ParameterDeclaration] {
        BertEncoder.parameters(config, pooler: false) + Linear.declare("qa_outputs", in: config.hiddenSize, out: 2)
    }

    public static func isHeadParameter(_ name: String) -> Bool { name.hasPrefix("qa_outputs.") }

    /// Built for the context's batches and precision.
    public init(config: BertConfig, context: BuildContext) {
        let pool = context.pool
        self.config = config
        parameters = ParameterStore(Self.parameters(config))
        encoder = BertEncoder(config: config, store: parameters, pooler: false, context: context)
        outputs = Linear("qa_outputs", in: parameters, precision: context.precision)
        let n = context.maxTokens
        logits = pool.floats(n * 2)
        dLogits = pool.floats(n * 2)
        dSequence = pool.floats(n * config.hiddenSize)
        positionLogits = pool.floats(n)
        dPositionLogits = pool.floats(n)
        positions = pool.int32s(context.maxBatch)
    }

    public func forward(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        batchSize = batch.batchSize
        length = batch.sequenceLength
        encoder.forward(batch, dropout: dropout)
        outputs.forward(encoder.sequenceOutput, logits, rows: batch.tokenCount)
    }

    public func startLogit(sequence b: Int, token t: Int) -> Float { logits[(b * length + t) * 2] }
    public func endLogit(sequence b: Int, token t: Int) -> Float { logits[(b * length + t) * 2 + 1] }

    /// (start CE + end CE) / 2, each the mean over the batch (over `batchSize` sequences when these are a share
    /// of a larger batch); prepares dL/dlogits (times `scale`).
    public func loss(starts: [Int], ends: [Int], scale: Float = 1, batchSize wholeBatch: Int? = nil) -> Double {
        precondition(starts.count == batchSize && ends.count == batchSize)
        let normalizer = wholeBatch.map(Double.init)
        return (positionLoss(column: 0, starts, scale: scale, normalizer: normalizer)
            + positionLoss(column: 1, ends, scale: scale, normalizer: normalizer)) / 2
    }

    /// The cross-entropy of one column of the logits (0 start, 1 end) over each sequence's positions, with its
    /// share (half) of dL/dlogits.
    private func positionLoss(column: Int, _ targets: [Int], scale: Float, normalizer: Double?) -> Double {
        for b in 0..<batchSize {
            positions[b] = Int32(targets[b])
            for t in 0..<length { positionLogits[b * length + t] = logits[(b * length + t) * 2 + column] }
        }
        let loss = CrossEntropy.forwardBackward(logits: positionLogits, targets: positions, rows: batchSize,
                                                classes: length, normalizer: normalizer, scale: scale / 2,
                                                dLogits: dPositionLogits)
        for i in 0..<(batchSize * length) { dLogits[i * 2 + column] = dPositionLogits[i] }
        return loss
    }

    public func backward() {
        outputs.backward(input: encoder.sequenceOutput, dOutput: dLogits, rows: batchSize * length, dInput: dSequence)
        encoder.backward(dSequenceOutput: dSequence, dPooledOutput: nil)
    }
}
