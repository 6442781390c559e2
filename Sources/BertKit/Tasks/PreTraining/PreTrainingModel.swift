/// `BertForPreTraining`: the encoder with its pooler, and BERT's two pre-training heads.
///
///     masked LM:  logits = LayerNorm(gelu(transform.dense(h))) · Eᵀ + cls.predictions.bias
///     next sentence:  logits = seq_relationship(pooled)
///
/// `E` is the word embedding table itself (the decoder is tied to it, as in the checkpoint), so its gradient
/// gathers both uses. The masked-LM head runs only on the masked positions: every other position has no label,
/// and the vocabulary-wide product is the head's whole cost. Neither head reads any other row of the last
/// layer, so the encoder computes the masked tokens and each `[CLS]` alone there (and no padding anywhere):
/// the same rows as a pass over every token. Loss = mean masked-LM cross-entropy + mean NSP cross-entropy, as
/// the paper sums them; without NSP, the masked-LM term alone.
///
/// RoBERTa's `RobertaForMaskedLM` is the masked-LM head alone, under the names `lm_head.dense`,
/// `lm_head.layer_norm` and `lm_head.bias`, with no pooler and no next-sentence head.
public final class PreTrainingModel {
    public let config: BertConfig
    public let parameters: ParameterStore
    public let encoder: BertEncoder
    let transform: Linear
    let transformNorm: LayerNormalization
    let decoderBias: Parameter
    /// The next-sentence head (BERT's), which RoBERTa has not.
    let seqRelationship: Linear?
    public let nextSentencePrediction: Bool
    /// The number format of the dense layers' and the decoder's GEMMs.
    public let precision: Precision

    // Masked-LM head, `[predictions, …]`: the gathered hidden states, the transform's stages, the logits.
    private let gathered, dense, activated, normalised: UnsafeMutablePointer<Float>
    private let normStatistics: NormStatistics
    /// `[predictions, vocabulary]` masked-LM logits of the last forward pass.
    public let mlmLogits: UnsafeMutablePointer<Float>
    /// `[batch, 2]` next-sentence logits (0 IsNext, 1 NotNext, as in transformers).
    public let nspLogits: UnsafeMutablePointer<Float>
    private let dMLMLogits, dNSPLogits, dNormalised, dActivated, dDense, dGathered: UnsafeMutablePointer<Float>
    private let dSequence, dPooled: UnsafeMutablePointer<Float>
    /// Each masked position's row of the last forward pass's sequence output (`[predictions]`).
    private let predictionRows: UnsafeMutablePointer<Int32>
    private let targets: UnsafeMutablePointer<Int32>
    /// Per token of the batch (`b · T + t`): whether it is masked (set for a forward pass, cleared after), and
    /// for a masked one its row among the last layer's selected rows.
    private let isMasked: UnsafeMutablePointer<Bool>
    private let selectedRow: UnsafeMutablePointer<Int32>
    private var batchSize = 0
    /// Rows of the last layer in the last forward pass (the masked tokens and `[CLS]`, or every position).
    private var lastLayerRowCount = 0
    /// Masked positions of the last forward pass.
    public private(set) var predictions = 0

    public static func parameters(_ config: BertConfig) -> [ParameterDeclaration] {
        let (h, names, nsp) = (config.hiddenSize, config.family.maskedLMNames, config.family.hasNextSentencePrediction)
        return BertEncoder.parameters(config, pooler: nsp)
            + Linear.declare(names.dense, in: h, out: h)
            + LayerNormalization.declare(names.layerNorm, width: h)
            + [.init(names.bias, [config.vocabSize])]
            + (nsp ? Linear.declare("cls.seq_relationship", in: h, out: 2) : [])
    }

    /// The heads' parameters: loaded when the checkpoint has them, initialised when it does not.
    public static func isHeadParameter(_ name: String) -> Bool { name.hasPrefix("cls.") || name.hasPrefix("lm_head.") }

    /// Buffers for the context's batches with up to `maxPredictions` masked positions in all; the context's
    /// precision is every matrix product's, the tied decoder's included (see `BertEncoder`).
    /// `nextSentencePrediction` needs a family that has the head (`EncoderFamily.hasNextSentencePrediction`).
    public init(config: BertConfig, context: BuildContext, maxPredictions: Int, nextSentencePrediction: Bool = true) {
        let (maxBatch, maxLength, precision, pool) = (context.maxBatch, context.maxLength, context.precision, context.pool)
        let (names, hasNSP) = (config.family.maskedLMNames, config.family.hasNextSentencePrediction)
        precondition(hasNSP || !nextSentencePrediction, "\(config.modelType) has no next-sentence head")
        self.config = config
        self.precision = precision
        self.nextSentencePrediction = nextSentencePrediction
        parameters = ParameterStore(Self.parameters(config))
        encoder = BertEncoder(config: config, store: parameters, pooler: hasNSP, context: context)
        transform = Linear(names.dense, in: parameters, precision: precision)
        transformNorm = LayerNormalization(names.layerNorm, in: parameters, eps: config.layerNormEps)
        decoderBias = parameters[names.bias]
        seqRelationship = hasNSP ? Linear("cls.seq_relationship", in: parameters, precision: precision) : nil
        let (h, v, p) = (config.hiddenSize, config.vocabSize, max(1, maxPredictions))
        gathered = pool.floats(p * h)
        dense = pool.floats(p * h)
        activated = pool.floats(p * h)
        normalised = pool.floats(p * h)
        normStatistics = NormStatistics(rows: p, pool: pool)
        mlmLogits = pool.floats(p * v)
        dMLMLogits = pool.floats(p * v)
        dNormalised = pool.floats(p * h)
        dActivated = pool.floats(p * h)
        dDense = pool.floats(p * h)
        dGathered = pool.floats(p * h)
        nspLogits = pool.floats(maxBatch * 2)
        dNSPLogits = pool.floats(maxBatch * 2)
        dSequence = pool.floats(maxBatch * maxLength * h)
        dPooled = pool.floats(maxBatch * h)
        predictionRows = pool.int32s(p)
        targets = pool.int32s(maxBatch + p)
        isMasked = pool.allocate(maxBatch * maxLength, of: Bool.self)
        isMasked.initialize(repeating: false, count: maxBatch * maxLength)
        selectedRow = pool.int32s(maxBatch * maxLength)
    }

    private var wordEmbeddings: Parameter { encoder.embeddings.word }

    /// Runs the encoder and both heads. `maskedPositions` index the batch's tokens (`b · T + t`).
    public func forward(_ batch: EncoderBatch, maskedPositions: [Int], dropout: DropoutMode = .evaluation) {
        forward(batch, maskedPositions: maskedPositions, dropout: dropout, everyRow: false)
    }

    /// The same; with `everyRow`, over every position of the padded batch in every layer (the pass the heads'
    /// rows are checked against).
    package func forward(_ batch: EncoderBatch, maskedPositions: [Int], dropout: DropoutMode, everyRow: Bool) {
        batchSize = batch.batchSize
        predictions = maskedPositions.count
        let T = batch.sequenceLength
        if everyRow {
            encoder.forward(batch, dropout: dropout)
            lastLayerRowCount = batch.tokenCount
        } else {
            for p in maskedPositions { isMasked[p] = true }
            let pooled = seqRelationship != nil
            encoder.forward(batch, lastLayerRowsWhere: { [isMasked] p in (pooled && p % T == 0) || isMasked[p] }, pooled: pooled,
                            dropout: dropout)
            for p in maskedPositions { isMasked[p] = false }
            let rows = encoder.lastLayerRows!
            lastLayerRowCount = rows.count
            for p in maskedPositions { selectedRow[p] = -1 }
            for i in 0..<rows.count { selectedRow[Int(rows.positions[i])] = Int32(i) }
        }
        let (h, v) = (config.hiddenSize, config.vocabSize)
        let sequence = encoder.sequenceOutput
        for (i, p) in maskedPositions.enumerated() {
            let row = everyRow ? p : Int(selectedRow[p])
            precondition(row >= 0, "masked position \(p) is padding, past its sequence's tokens")
            predictionRows[i] = Int32(row)
            (gathered + i * h).update(from: sequence + row * h, count: h)
        }
        transform.forward(gathered, dense, rows: predictions)
        GELU.forward(dense, activated, count: predictions * h)
        transformNorm.forward(activated, normalised, saved: normStatistics, rows: predictions)
        Gemm.multiply(.none, .transposed, m: predictions, n: v, k: h, a: normalised, lda: h,
                      b: wordEmbeddings.value, ldb: h, c: mlmLogits, ldc: v, bias: decoderBias.value, precision: precision)
        seqRelationship?.forward(encoder.pooledOutput, nspLogits, rows: batchSize)
    }

    /// The losses of the last forward pass against the original tokens at the masked positions and the
    /// next-sentence labels (0 IsNext, 1 NotNext); prepares the gradients of their sum (times `scale`). When
    /// these pairs are a share of a larger batch, `batch` gives its masked positions and pairs, the means'
    /// denominators.
    public func loss(maskedTokens: [Int32], isRandomNext: [Bool], scale: Float = 1,
                     batch: (maskedPositions: Int, pairs: Int)? = nil) -> (mlm: Double, nsp: Double) {
        precondition(maskedTokens.count == predictions && isRandomNext.count == batchSize)
        for i in 0..<predictions { targets[i] = maskedTokens[i] }
        let mlm = predictions == 0 ? 0 : CrossEntropy.forwardBackward(
            logits: mlmLogits, targets: targets, rows: predictions, classes: config.vocabSize,
            normalizer: batch.map { Double($0.maskedPositions) }, scale: scale, dLogits: dMLMLogits)
        guard seqRelationship != nil else { return (mlm, 0) }
        for b in 0..<batchSize { targets[b] = isRandomNext[b] ? 1 : 0 }
        let nsp = CrossEntropy.forwardBackward(logits: nspLogits, targets: targets, rows: batchSize, classes: 2,
                                               normalizer: batch.map { Double($0.pairs) },
                                               scale: nextSentencePrediction ? scale : 0, dLogits: dNSPLogits)
        return (mlm, nsp)
    }

    /// One pair's terms of the last forward pass's losses, summed rather than averaged, for evaluation: the
    /// masked-LM cross-entropy of masked positions `predictions` (its share of the positions, in order) against
    /// their original tokens, and sequence `b`'s next-sentence cross-entropy. Leaves the gradients undefined.
    public func losses(sequence b: Int, predictions rows: Range<Int>, maskedTokens: [Int32], isRandomNext: Bool) -> (mlm: Double, nsp: Double) {
        precondition(rows.count == maskedTokens.count && rows.upperBound <= predictions && b < batchSize)
        let v = config.vocabSize
        for (i, token) in maskedTokens.enumerated() { targets[i] = token }
        let mlm = CrossEntropy.forwardBackward(logits: mlmLogits + rows.lowerBound * v, targets: targets, rows: rows.count,
                                               classes: v, normalizer: 1, scale: 0, dLogits: dMLMLogits)
        guard seqRelationship != nil else { return (mlm, 0) }
        targets[0] = isRandomNext ? 1 : 0
        let nsp = CrossEntropy.forwardBackward(logits: nspLogits + b * 2, targets: targets, rows: 1, classes: 2, normalizer: 1,
                                               scale: 0, dLogits: dNSPLogits)
        return (mlm, nsp)
    }

    /// Back-propagates the loss prepared by `loss(maskedTokens:isRandomNext:scale:)` into every gradient.
    public func backward() {
        let (h, v) = (config.hiddenSize, config.vocabSize)
        // dL/d(sequence output): one row per row of the last layer.
        dSequence.update(repeating: 0, count: lastLayerRowCount * h)
        if predictions > 0 {
            Elementwise.accumulateColumnSums(dMLMLogits, into: decoderBias.gradient, rows: predictions, width: v)
            Gemm.multiply(.transposed, .none, m: v, n: h, k: predictions, a: dMLMLogits, lda: v, b: normalised, ldb: h,
                          beta: 1, c: wordEmbeddings.gradient, ldc: h, precision: precision)
            Gemm.multiply(.none, .none, m: predictions, n: h, k: v, a: dMLMLogits, lda: v, b: wordEmbeddings.value,
                          ldb: h, c: dNormalised, ldc: h, precision: precision)
            transformNorm.backward(input: activated, saved: normStatistics, dOutput: dNormalised, dInput: dActivated,
                                   rows: predictions)
            GELU.backward(dense, dActivated, dDense, count: predictions * h)
            transform.backward(input: gathered, dOutput: dDense, rows: predictions, dInput: dGathered)
            for i in 0..<predictions {
                let row = dSequence + Int(predictionRows[i]) * h
                let gradient = dGathered + i * h
                for c in 0..<h { row[c] += gradient[c] }
            }
        }
        if nextSentencePrediction, let seqRelationship {
            seqRelationship.backward(input: encoder.pooledOutput, dOutput: dNSPLogits, rows: batchSize, dInput: dPooled)
        }
        encoder.backward(dSequenceOutput: dSequence, dPooledOutput: nextSentencePrediction ? dPooled : nil)
    }

    /// The most likely token at masked position `i` of the last forward pass.
    public func predictedToken(_ i: Int) -> Int32 { Int32(argmax(mlmLogits + i * config.vocabSize, count: config.vocabSize)) }

    /// Whether sequence `b` of the last forward pass is predicted to be followed by a random segment.
    public func predictsRandomNext(_ b: Int) -> Bool { nspLogits[b * 2 + 1] > nspLogits[b * 2] }
}
