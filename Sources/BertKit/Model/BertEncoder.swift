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
    /// The position id of each sequence's first token (`EncoderFamily.firstPosition`), and the one padding tokens
    /// take when the family numbers padding apart (RoBERTa: the padding id).
    private let firstPosition: Int32
    private let paddingPosition: Int32?
    private let packing: TokenLayout.Storage
    private let selection: SelectedRows.Storage

    // The batch of the last forward pass, which the backward pass differentiates.
    private var batch: EncoderBatch?
    private var dropout = DropoutMode.evaluation
    /// How the last forward pass laid out the batch's tokens.
    public private(set) var layout = TokenLayout.padded(lengths: [], length: 0)
    /// The rows the last forward pass computed in the last layer, when not every token's.
    public private(set) var lastLayerRows: SelectedRows?
    /// Where the pooler read each sequence's `[CLS]` row in the last forward pass.
    private var poolerRows = PoolerRows.none
    /// `[batch, hidden]`: the `[CLS]` rows copied out of a selection of last-layer rows that holds others too (the
    /// pooler's input then), and in the backward pass their gradient.
    private let firstRows, dFirstRows: UnsafeMutablePointer<Float>

    private enum PoolerRows {
        /// No pooled output.
        case none
        /// Rows `T · hidden` floats apart in the padded output (`forward(_:dropout:)`).
        case padded
        /// The last layer computed the `[CLS]` rows alone, `hidden` apart (`forwardPooledOnly`).
        case alone
        /// Copied into `firstRows` from a selection with other rows (`forward(_:lastLayerRowsWhere:pooled:dropout:)`).
        case copied
    }

    /// Declarations of every encoder parameter, in checkpoint order.
    public static func parameters(_ config: BertConfig, pooler: Bool = true) -> [ParameterDeclaration] {
        BertEmbeddings.declare(config)
            + (0..<config.numHiddenLayers).flatMap { BertLayer.declare(config, index: $0) }
            + (pooler ? BertPooler.declare(config) : [])
    }

    /// Builds the encoder over parameters declared by `parameters(_:pooler:)` in `store`, with activation
    /// buffers from the context's pool for its largest batch. The context's `precision` is the number
    /// format of every matrix product's inputs: the dense layers' and attention's (scores and context, and their
    /// gradients). Accumulation, softmax, LayerNorm, GELU and the parameters stay fp32.
    public init(config: BertConfig, store: ParameterStore, pooler: Bool = true, context: BuildContext) {
        let (maxBatch, maxLength, pool) = (context.maxBatch, context.maxLength, context.pool)
        precondition(maxLength <= config.maxSequenceLength,
                     "maxLength \(maxLength) exceeds the \(config.maxSequenceLength) positions of max_position_embeddings \(config.maxPositionEmbeddings)")
        self.config = config
        self.maxBatch = maxBatch
        self.maxLength = maxLength
        self.pool = pool
        embeddings = BertEmbeddings(config, store: store, context: context)
        layers = (0..<config.numHiddenLayers).map {
            BertLayer(config, index: $0, store: store, context: context)
        }
        self.pooler = pooler ? BertPooler(config, store: store, context: context) : nil
        firstPosition = Int32(config.family.firstPosition(config))
        paddingPosition = config.family.numbersPaddingApart ? Int32(config.padTokenId) : nil
        scratch = LayerScratch(config, context: context)
        output = pool.floats(maxBatch * maxLength * config.hiddenSize)
        (tokenIds, tokenTypeIds, positionIds) = (pool.int32s(maxBatch * maxLength), pool.int32s(maxBatch * maxLength),
                                                 pool.int32s(maxBatch * maxLength))
        packing = TokenLayout.Storage(maxBatch: maxBatch, pool: pool)
        selection = SelectedRows.Storage(maxBatch: maxBatch, maxLength: maxLength, pool: pool)
        (firstRows, dFirstRows) = (pool.floats(maxBatch * config.hiddenSize), pool.floats(maxBatch * config.hiddenSize))
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
        guard let pooler else { return }
        pooler.forward(output, batch: batch.batchSize, length: batch.sequenceLength, dropout: dropout)
        poolerRows = .padded
    }

    /// The forward pass of the real tokens `include(b · T + t)` accepts alone in the last layer, for heads
    /// that read nothing else (a tagger's scored tokens, pre-training's masked ones), in training or
    /// evaluation: every layer computes the real tokens only (`TokenLayout` packed: no padding), the last one
    /// keys and values for all of them and the rest for the accepted rows, each row with the result a pass
    /// over every token gives it (dropout masks included). `sequenceOutput` then holds those rows
    /// (`lastLayerRows`), compactly; the backward pass takes their gradient. With `pooled` (for a head that
    /// reads the pooled output too: next-sentence prediction), `include` must accept each sequence's first
    /// token, whose row the pooler reads.
    public func forward(_ batch: EncoderBatch, lastLayerRowsWhere include: (Int) -> Bool, pooled: Bool = false,
                        dropout: DropoutMode = .evaluation) {
        let layout = packing.packed(lengths: batch.lengths, length: batch.sequenceLength)
        let rows = selection.select(layout, where: include)
        run(batch, layout: layout, lastLayerRows: rows, dropout: dropout)
        guard pooled else { return }
        guard let pooler else { preconditionFailure("this encoder was built without a pooler") }
        let (h, T) = (config.hiddenSize, batch.sequenceLength)
        for b in 0..<batch.batchSize {
            let first = rows.rows(ofSequence: b).lowerBound
            precondition(first < rows.count && Int(rows.positions[first]) == b * T,
                         "a pooled pass must select each sequence's first token (sequence \(b) has none)")
            (firstRows + b * h).update(from: output + first * h, count: h)
        }
        pooler.forward(firstRows, batch: batch.batchSize, length: 1, dropout: dropout)
        poolerRows = .copied
    }

    /// The forward pass of the pooled output alone, for heads that read nothing else (sequence
    /// classification): as above, with each sequence's `[CLS]` row alone in the last layer. At 6 layers that
    /// saves about 14 % of the encoder's work, forward and backward, besides the padding. The backward pass
    /// takes a gradient of the pooled output only.
    public func forwardPooledOnly(_ batch: EncoderBatch, dropout: DropoutMode = .evaluation) {
        guard let pooler else { preconditionFailure("this encoder was built without a pooler") }
        let layout = packing.packed(lengths: batch.lengths, length: batch.sequenceLength)
        run(batch, layout: layout, lastLayerRows: selection.firstTokens(layout), dropout: dropout)
        pooler.forward(output, batch: batch.batchSize, length: 1, dropout: dropout)
        poolerRows = .alone
    }

    /// The embeddings and every layer over `layout`'s rows, the last over `lastLayerRows` (nil: all of them),
    /// into `output`.
    private func run(_ batch: EncoderBatch, layout: TokenLayout, lastLayerRows: SelectedRows?, dropout: DropoutMode) {
        self.batch = batch
        self.layout = layout
        self.dropout = dropout
        self.lastLayerRows = lastLayerRows
        poolerRows = .none
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
            var position = firstPosition
            for t in 0..<layout.rowCount(b) {
                let row = layout.start(b) + t
                let id = batch.tokenIds[b * T + t]
                (tokenIds[row], tokenTypeIds[row]) = (id, batch.tokenTypeIds[b * T + t])
                // RoBERTa numbers the tokens that are not padding from past the padding id, and gives padding
                // that id's row (`create_position_ids_from_input_ids`); BERT numbers every position.
                if let paddingPosition, id == paddingPosition {
                    positionIds[row] = paddingPosition
                } else {
                    positionIds[row] = position
                    position += 1
                }
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
        if case .alone = poolerRows {
            precondition(dSequenceOutput == nil, "after forwardPooledOnly the loss depends on the pooled output only")
        }
        if case .none = poolerRows {
            precondition(dPooledOutput == nil, "the last forward pass made no pooled output")
        }
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
            switch poolerRows {
            case .padded, .alone:
                pooler.backward(UnsafePointer(output), dPooled: dPooledOutput, dSequence: dHidden, batch: batch.batchSize,
                                length: poolerRows == .alone ? 1 : T, dropout: dropout)
            case .copied:
                // The [CLS] rows' gradient from the pooler, added into their rows of the selection.
                let (h, rows) = (config.hiddenSize, lastLayerRows!)
                dFirstRows.update(repeating: 0, count: batch.batchSize * h)
                pooler.backward(UnsafePointer(firstRows), dPooled: dPooledOutput, dSequence: dFirstRows,
                                batch: batch.batchSize, length: 1, dropout: dropout)
                for b in 0..<batch.batchSize {
                    let (row, gradient) = (dHidden + rows.rows(ofSequence: b).lowerBound * h, dFirstRows + b * h)
                    for c in 0..<h { row[c] += gradient[c] }
                }
            case .none:
                break
            }
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
