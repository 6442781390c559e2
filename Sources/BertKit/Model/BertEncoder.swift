/// `BertModel`: embeddings, `numHiddenLayers` Transformer layers and (optionally) the pooler, with a
/// forward and a backward pass over buffers allocated once for the largest batch.
///
/// Parameters live in a `ParameterStore` that the caller owns and may share with a task head, so that one
/// optimizer loop covers the whole model. Parameter names are the checkpoint's (`encoder.layer.3.attention.
/// self.query.weight`), so loading and exporting are a direct mapping.
public final class BertEncoder {
    public let config: BertConfig
    public let maxBatch: Int
    public let maxLength: Int

    let embeddings: BertEmbeddings
    let layers: [BertLayer]
    let pooler: BertPooler?
    let scratch: LayerScratch
    /// The last layer's output, `[tokens, hidden]`; the other layers' outputs live in `scratch.states`.
    private let output: UnsafeMutablePointer<Float>
    private let pool: BufferPool
    /// The token, segment and position ids of the rows of the last forward pass.
    private let tokenIds, tokenTypeIds, positionIds: UnsafeMutablePointer<Int32>
    private let packing: TokenLayout.Storage
    private let selection: SelectedRows.Storage

    // The batch of the last forward pass, which the backward pass differentiates.
    private var batch: EncoderBatch?
    private var dropout = DropoutMode.evaluation
    /// How the last forward pass laid out the batch's tokens.
    public private(set) var layout = TokenLayout.padded(lengths: [], length: 0)
    /// The rows the last forward pass computed in the last layer, when not every token's.
    public private(set) var lastLayerRows: SelectedRows?
    /// Whether the last forward pass was `forwardPooledOnly`.
    private var pooledOnly = false

    /// Declarations of every encoder parameter, in checkpoint order.
    public static func parameters(_ config: BertConfig, pooler: Bool = true) -> [ParameterDeclaration] {
        BertEmbeddings.declare(config)
            + (0..<config.numHiddenLayers).flatMap { BertLayer.declare(config, index: $0) }
            + (pooler ? BertPooler.declare(config) : [])
    }

    /// Builds the encoder over parameters declared by `parameters(_:pooler:)` in `store`, with activation
    /// buffers for batches of up to `maxBatch` sequences of up to `maxLength` tokens. `precision` is the number
    /// format of every matrix product's inputs: the dense layers' and attention's (scores and context, and their
    /// gradients). Accumulation, softmax, LayerNorm, GELU and the parameters stay fp32.
    public init(config: BertConfig, store: ParameterStore, maxBatch: Int, maxLength: Int, pooler: Bool = true,
                precision: Precision = .float32) {
        precondition(maxLength <= config.maxPositionEmbeddings,
                     "maxLength \(maxLength) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        self.config = config
        self.maxBatch = maxBatch
        self.maxLength = maxLength
        let pool = BufferPool()
        self.pool = pool
        embeddings = BertEmbeddings(config, store: store, maxTokens: maxBatch * maxLength, pool: pool)
        layers = (0..<config.numHiddenLayers).map {
            BertLayer(config, index: $0, store: store, maxBatch: maxBatch, maxLength: maxLength, precision: precision,
                      pool: pool)
        }
        self.pooler = pooler ? BertPooler(store: store, maxBatch: maxBatch, precision: precision, pool: pool) : nil
        scratch = LayerScratch(config, maxBatch: maxBatch, maxLength: maxLength, pool: pool)
        output = pool.floats(maxBatch * maxLength * config.hiddenSize)
        (tokenIds, tokenTypeIds, positionIds) = (pool.int32s(maxBatch * maxLength), pool.int32s(maxBatch * maxLength),
                                                 pool.int32s(maxBatch * maxLength))
        packing = TokenLayout.Storage(maxBatch: maxBatch, pool: pool)
        selection = SelectedRows.Storage(maxBatch: maxBatch, maxLength: maxLength, pool: pool)
    }

    /// Bytes of activation and gradient buffers held by this encoder.
    public var workspaceBytes: Int { pool.bytesAllocated }

    /// Hidden states of the last layer from the last forward pass: `[batch · T, hidden]`, or one row per
    /// token of `lastLayerRows` when the pass computed those alone.
    public var sequenceOutput: UnsafePointer<Float> { UnsafePointer(output) }

    /// `[batch, hidden]` pooled outputs from the last forward pass.
    public var pooledOutput: UnsafePointer<Float> {
        guard let pooler else { preconditionFailure("this encoder was built without a pooler") }
        return UnsafePointer(pooler.output)
    }

    /// Every token's hidden states, padding's too (as the reference computes them), and the pooled output.
    public func forward(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        run(batch, layout: .padded(lengths: batch.lengths, length: batch.sequenceLength), lastLayerRows: nil,
            dropout: dropout)
        pooler?.forward(output, batch: batch.batchSize, length: batch.sequenceLength)
    }

    /// The forward pass of the real tokens `include(b · T + t)` accepts alone in the last layer, for heads
    /// that read nothing else (a tagger's scored tokens), in training or evaluation: every layer computes the
    /// real tokens only (`TokenLayout` packed: no padding), the last one keys and values for all of them and
    /// the rest for the accepted rows, each row with the result a pass over every token gives it (dropout
    /// masks included). `sequenceOutput` then holds those rows (`lastLayerRows`), compactly; the backward pass
    /// takes their gradient. No pooled output.
    public func forward(_ batch: EncoderBatch, lastLayerRowsWhere include: (Int) -> Bool,
                        dropout: DropoutMode = .evaluation) {
        let layout = packing.packed(lengths: batch.lengths, length: batch.sequenceLength)
        run(batch, layout: layout, lastLayerRows: selection.select(layout, where: include), dropout: dropout)
    }

    /// The forward pass of the pooled output alone, for heads that read nothing else (sequence
    /// classification): as above, with each sequence's `[CLS]` row alone in the last layer. At 6 layers that
    /// saves about 14 % of the encoder's work, forward and backward, besides the padding. The backward pass
    /// takes a gradient of the pooled output only.
    public func forwardPooledOnly(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        guard let pooler else { preconditionFailure("this encoder was built without a pooler") }
        let layout = packing.packed(lengths: batch.lengths, length: batch.sequenceLength)
        run(batch, layout: layout, lastLayerRows: selection.firstTokens(layout), dropout: dropout)
        pooledOnly = true
        pooler.forward(output, batch: batch.batchSize, length: 1)
    }

    /// The embeddings and every layer over `layout`'s rows, the last over `lastLayerRows` (nil: all of them),
    /// into `output`.
    private func run(_ batch: EncoderBatch, layout: TokenLayout, lastLayerRows: SelectedRows?, dropout: DropoutMode) {
        self.batch = batch
        self.layout = layout
        self.dropout = dropout
        self.lastLayerRows = lastLayerRows
        pooledOnly = false
        var x = embed(batch, dropout: dropout)
        for l in layers.indices {
            let result = result(of: l)
            layers[l].forward(x, result: result, layout: layout, queries: queries(l),
                              dropout: dropout, scratch: scratch)
            x = UnsafePointer(result)
        }
    }

    /// The query rows that layer `l` computes in the last forward pass.
    private func queries(_ l: Int) -> AttentionCore.Queries {
        guard l == layers.count - 1, let lastLayerRows else { return .all }
        return .selected(lastLayerRows)
    }

    /// Where layer `l`'s forward pass writes its output: the next layer's input in scratch, alternating
    /// between two buffers, and the last layer's into `output`.
    private func result(of l: Int) -> UnsafeMutablePointer<Float> {
        l == layers.count - 1 ? output : (l % 2 == 0 ? scratch.states.0 : scratch.states.1)
    }

    /// The embeddings of `batch`'s tokens in `layout`'s rows, the first layer's input.
    private func embed(_ batch: EncoderBatch, dropout: DropoutMode) -> UnsafePointer<Float> {
        precondition(batch.batchSize <= maxBatch && batch.sequenceLength <= maxLength,
                     "batch \(batch.batchSize)×\(batch.sequenceLength) exceeds the encoder's \(maxBatch)×\(maxLength)")
        let T = batch.sequenceLength
        for b in 0..<layout.sequences {
            for t in 0..<layout.rowCount(b) {
                let row = layout.start(b) + t
                (tokenIds[row], tokenTypeIds[row], positionIds[row]) = (batch.tokenIds[b * T + t], batch.tokenTypeIds[b * T + t], Int32(t))
            }
        }
        embeddings.forward(tokenIds: tokenIds, tokenTypeIds: tokenTypeIds, positionIds: positionIds, layout: layout,
                           dropout: dropout)
        return UnsafePointer(embeddings.output)
    }

    /// Back-propagates from the gradients of the last forward pass's outputs into the parameters' gradients
    /// (which accumulate). Either gradient may be absent when the loss does not depend on that output.
    public func backward(dSequenceOutput: UnsafePointer<Float>?, dPooledOutput: UnsafePointer<Float>?) {
        guard let batch else { preconditionFailure("backward called before forward") }
        precondition(!pooledOnly || dSequenceOutput == nil,
                     "after forwardPooledOnly the loss depends on the pooled output only")
        precondition(lastLayerRows == nil || pooledOnly || dPooledOutput == nil,
                     "after a forward pass over selected rows there is no pooled output")
        let T = batch.sequenceLength
        let tokens = layout.rows
        // dL/d(hidden states) is carried down through the layers in one buffer, which each layer updates in
        // place; after a pass over selected rows, the last layer's rows are those.
        let dHidden = scratch.dHidden
        let lastRows = lastLayerRows?.count ?? tokens
        if let dSequenceOutput {
            dHidden.update(from: dSequenceOutput, count: lastRows * config.hiddenSize)
        } else {
            dHidden.update(repeating: 0, count: lastRows * config.hiddenSize)
        }
        if let dPooledOutput, let pooler {
            pooler.backward(UnsafePointer(output), dPooled: dPooledOutput, dSequence: dHidden, batch: batch.batchSize,
                            length: pooledOnly ? 1 : T)
        }
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            // A layer's input is the previous layer's output, which was not kept: recompute it.
            if l > 0 { layers[l - 1].recomputeResult(scratch.states.0, rows: tokens) }
            let input = l == 0 ? UnsafePointer(embeddings.output) : UnsafePointer(scratch.states.0)
            layers[l].backward(input, gradient: dHidden, layout: layout, queries: queries(l),
                               dropout: dropout, scratch: scratch)
        }
        embeddings.backward(tokenIds: tokenIds, tokenTypeIds: tokenTypeIds, positionIds: positionIds, layout: layout,
                            dropout: dropout, gradient: dHidden, scratch: scratch.hiddenA)
    }
}
