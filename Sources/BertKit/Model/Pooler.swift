/// `BertPooler`: `tanh(dense(h[CLS]))`, the sentence representation that sequence classification reads. RoBERTa's
/// classification head begins the same way under its own names (`classifier.dense`), with dropout on the first
/// token's hidden state before the dense layer.
struct BertPooler {
    let dense: Linear
    /// Dropout on the input rows (RoBERTa's head), or 0.
    let inputDropout: Float
    /// `[batch, hidden]` pooled outputs, saved for the backward pass.
    let output: UnsafeMutablePointer<Float>
    let dPreActivation: UnsafeMutablePointer<Float>
    /// The input rows after dropout, and their gradient (RoBERTa's head).
    let dropped, dDropped: UnsafeMutablePointer<Float>

    static func declare(_ c: BertConfig) -> [ParameterDeclaration] {
        Linear.declare(c.family.classificationNames.dense, in: c.hiddenSize, out: c.hiddenSize)
    }

    init(_ c: BertConfig, store: ParameterStore, context: BuildContext) {
        dense = Linear(c.family.classificationNames.dense, in: store, precision: context.precision)
        inputDropout = c.family.hasClassificationHead ? c.hiddenDropoutProb : 0
        output = context.pool.floats(context.maxBatch * dense.outFeatures)
        dPreActivation = context.pool.floats(context.maxBatch * dense.outFeatures)
        (dropped, dDropped) = (context.pool.floats(context.maxBatch * dense.inFeatures), context.pool.floats(context.maxBatch * dense.inFeatures))
    }

    /// The `[CLS]` token is the first of each sequence: rows `T · hidden` floats apart, or `hidden` apart when
    /// the last layer computed first tokens only (`T` 1).
    func forward(_ sequence: UnsafePointer<Float>, batch: Int, length T: Int, dropout: DropoutMode) {
        let h = dense.inFeatures
        if dropout.probability(inputDropout) > 0 {
            for b in 0..<batch { (dropped + b * h).update(from: sequence + b * T * h, count: h) }
            drop(dropped, batch: batch, dropout: dropout)
            dense.forward(dropped, output, rows: batch)
        } else {
            dense.forward(sequence, output, rows: batch, inputStride: T * h)
        }
        Elementwise.tanh(output, output, count: batch * dense.outFeatures)
    }

    /// Adds dL/d(sequence) at each `[CLS]` row into `dSequence`.
    func backward(_ sequence: UnsafePointer<Float>, dPooled: UnsafePointer<Float>, dSequence: UnsafeMutablePointer<Float>,
                  batch: Int, length T: Int, dropout: DropoutMode) {
        let h = dense.inFeatures
        Elementwise.tanhBackward(output: output, dPooled, dPreActivation, count: batch * dense.outFeatures)
        if dropout.probability(inputDropout) > 0 {
            dense.backward(input: dropped, dOutput: dPreActivation, rows: batch, dInput: dDropped)
            drop(dDropped, batch: batch, dropout: dropout)
            for b in 0..<batch {
                let (row, gradient) = (dSequence + b * T * h, dDropped + b * h)
                for c in 0..<h { row[c] += gradient[c] }
            }
        } else {
            dense.backward(input: sequence, dOutput: dPreActivation, rows: batch, dInput: dSequence, accumulate: true,
                           inputStride: T * h, dInputStride: T * h)
        }
    }

    /// Dropout of `[batch, hidden]` rows in place, or its gradient (the same map), at a site of its own: next to
    /// the output layer's (2^20).
    private func drop(_ rows: UnsafeMutablePointer<Float>, batch: Int, dropout: DropoutMode) {
        let h = dense.inFeatures
        Dropout.forward(rows, rows, count: batch * h, probability: dropout.probability(inputDropout),
                        seed: dropout.seed(site: (1 << 20) + 1), first: dropout.first(perSequence: h))
    }
}
