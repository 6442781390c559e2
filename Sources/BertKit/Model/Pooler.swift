/// `BertPooler`: `tanh(dense(h[CLS]))`, the sentence representation that sequence classification reads.
struct BertPooler {
    let dense: Linear
    /// `[batch, hidden]` pooled outputs, saved for the backward pass.
    let output: UnsafeMutablePointer<Float>
    let dPreActivation: UnsafeMutablePointer<Float>

    static func declare(_ c: BertConfig) -> [ParameterDeclaration] {
        Linear.declare("pooler.dense", in: c.hiddenSize, out: c.hiddenSize)
    }

    init(store: ParameterStore, context: BuildContext) {
        dense = Linear("pooler.dense", in: store, precision: context.precision)
        output = context.pool.floats(context.maxBatch * dense.outFeatures)
        dPreActivation = context.pool.floats(context.maxBatch * dense.outFeatures)
    }

    /// The `[CLS]` token is the first of each sequence: rows `T · hidden` floats apart, or `hidden` apart when
    /// the last layer computed first tokens only (`T` 1).
    func forward(_ sequence: UnsafePointer<Float>, batch: Int, length T: Int) {
        dense.forward(sequence, output, rows: batch, inputStride: T * dense.inFeatures)
        Elementwise.tanh(output, output, count: batch * dense.outFeatures)
    }

    /// Adds dL/d(sequence) at each `[CLS]` row into `dSequence`.
    func backward(_ sequence: UnsafePointer<Float>, dPooled: UnsafePointer<Float>, dSequence: UnsafeMutablePointer<Float>,
                  batch: Int, length T: Int) {
        Elementwise.tanhBackward(output: output, dPooled, dPreActivation, count: batch * dense.outFeatures)
        dense.backward(input: sequence, dOutput: dPreActivation, rows: batch, dInput: dSequence, accumulate: true,
                       inputStride: T * dense.inFeatures, dInputStride: T * dense.inFeatures)
    }
}
