/// The one output layer a classification task adds on the encoder, as transformers builds it: dropout on the
/// encoder's output (the pooled `[CLS]` vector, or every token's hidden state), then a linear layer.
public struct OutputLayer {
    public let linear: Linear
    let dropoutProbability: Float
    private let dropped: UnsafeMutablePointer<Float>
    /// dL/d(input) after `backward`.
    public let dInput: UnsafeMutablePointer<Float>

    /// The layer named `prefix` in `store`, with buffers from the context's pool for up to `maxRows` input rows.
    public init(_ prefix: String, in store: ParameterStore, dropoutProbability: Float, maxRows: Int, context: BuildContext) {
        linear = Linear(prefix, in: store, precision: context.precision)
        self.dropoutProbability = dropoutProbability
        let count = maxRows * linear.inFeatures
        dropped = context.pool.floats(count)
        dInput = context.pool.floats(count)
    }

    /// `rowsPerSequence` input rows belong to each sequence of the batch: 1 for pooled vectors, the padded
    /// length for every token's hidden state (it numbers the dropout draws, see `DropoutMode.firstSequence`).
    /// With `selected`, the input is those tokens' rows alone (`rows` of them), which draw the masks they have
    /// among every token's.
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int,
                        rowsPerSequence: Int = 1, selected: SelectedRows? = nil, dropout: DropoutMode) {
        drop(input, dropped, rows: rows, rowsPerSequence: rowsPerSequence, selected: selected, dropout: dropout)
        linear.forward(dropped, output, rows: rows)
    }

    /// Adds to the linear layer's gradients and writes `dInput`; `rowsPerSequence`, `selected` and `dropout`
    /// are the forward pass's.
    public func backward(dOutput: UnsafePointer<Float>, rows: Int, rowsPerSequence: Int = 1, selected: SelectedRows? = nil,
                         dropout: DropoutMode) {
        linear.backward(input: dropped, dOutput: dOutput, rows: rows, dInput: dInput)
        drop(dInput, dInput, rows: rows, rowsPerSequence: rowsPerSequence, selected: selected, dropout: dropout)
    }

    /// Dropout, or its gradient (the same map), at the layer's site: 2^20, apart from the encoder's sites (0
    /// for the embeddings, then 3 per layer).
    private func drop(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int,
                      rowsPerSequence: Int, selected: SelectedRows?, dropout: DropoutMode) {
        let width = linear.inFeatures
        let (probability, seed) = (dropout.probability(dropoutProbability), dropout.seed(site: 1 << 20))
        let first = dropout.first(perSequence: rowsPerSequence * width)
        if let selected {
            precondition(selected.count == rows, "\(rows) rows for a selection of \(selected.count)")
            Dropout.forward(input, output, selected: selected, width: width, probability: probability, seed: seed,
                            first: first)
        } else {
            Dropout.forward(input, output, count: rows * width, probability: probability, seed: seed, first: first)
        }
    }
}
