/// `BertEmbeddings`: word + position + token-type embeddings, then LayerNorm and dropout.
struct BertEmbeddings {
    let word: Parameter
    let position: Parameter
    let tokenType: Parameter
    let layerNorm: LayerNormalization
    let dropoutProbability: Float
    /// The `[PAD]` row of the word embeddings, which (as in transformers) receives no gradient.
    let padTokenId: Int32
    /// The position row of padding in RoBERTa, which receives no gradient either.
    let paddingPosition: Int32?

    // Saved for the backward pass.
    let sum: UnsafeMutablePointer<Float>
    let statistics: NormStatistics
    /// The embeddings' output, the first layer's input.
    let output: UnsafeMutablePointer<Float>

    static func declare(_ c: BertConfig) -> [ParameterDeclaration] {
        [
            .init("embeddings.word_embeddings.weight", [c.vocabSize, c.hiddenSize]),
            .init("embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, c.hiddenSize]),
            .init("embeddings.token_type_embeddings.weight", [c.typeVocabSize, c.hiddenSize]),
        ] + LayerNormalization.declare("embeddings.LayerNorm", width: c.hiddenSize)
    }

    init(_ c: BertConfig, store: ParameterStore, context: BuildContext) {
        let (maxTokens, pool) = (context.maxTokens, context.pool)
        word = store["embeddings.word_embeddings.weight"]
        position = store["embeddings.position_embeddings.weight"]
        tokenType = store["embeddings.token_type_embeddings.weight"]
        layerNorm = LayerNormalization("embeddings.LayerNorm", in: store, eps: c.layerNormEps)
        dropoutProbability = c.hiddenDropoutProb
        padTokenId = Int32(c.padTokenId)
        paddingPosition = c.family.numbersPaddingApart ? Int32(c.padTokenId) : nil
        sum = pool.floats(maxTokens * c.hiddenSize)
        statistics = NormStatistics(rows: maxTokens, pool: pool)
        output = pool.floats(maxTokens * c.hiddenSize)
    }

    var width: Int { word.shape[1] }

    /// The embeddings of `layout.rows` tokens, whose ids are given row by row.
    func forward(tokenIds: UnsafePointer<Int32>, tokenTypeIds: UnsafePointer<Int32>, positionIds: UnsafePointer<Int32>,
                 layout: TokenLayout, dropout: DropoutMode) {
        let tokens = layout.rows
        Embedding.gather(word.value, indices: tokenIds, into: sum, tokens: tokens, width: width, accumulate: false)
        Embedding.gather(position.value, indices: positionIds, into: sum, tokens: tokens, width: width, accumulate: true)
        Embedding.gather(tokenType.value, indices: tokenTypeIds, into: sum, tokens: tokens, width: width, accumulate: true)
        layerNorm.forward(sum, output, saved: statistics, rows: tokens)
        Dropout.forward(output, output, layout: layout, width: width,
                        probability: dropout.probability(dropoutProbability), seed: dropout.seed(site: 0),
                        first: dropout.first(perSequence: layout.length * width))
    }

    /// `gradient` holds dL/d(output) and is used as scratch.
    func backward(tokenIds: UnsafePointer<Int32>, tokenTypeIds: UnsafePointer<Int32>, positionIds: UnsafePointer<Int32>,
                  layout: TokenLayout, dropout: DropoutMode, gradient: UnsafeMutablePointer<Float>,
                  scratch: UnsafeMutablePointer<Float>) {
        let tokens = layout.rows
        Dropout.forward(gradient, gradient, layout: layout, width: width,
                        probability: dropout.probability(dropoutProbability), seed: dropout.seed(site: 0),
                        first: dropout.first(perSequence: layout.length * width))
        layerNorm.backward(input: sum, saved: statistics, dOutput: gradient, dInput: scratch, rows: tokens)
        Embedding.scatterAdd(scratch, indices: tokenIds, into: word.gradient, tokens: tokens, width: width,
                               frozenRow: padTokenId)
        Embedding.scatterAdd(scratch, indices: positionIds, into: position.gradient, tokens: tokens, width: width,
                               frozenRow: paddingPosition)
        Embedding.scatterAdd(scratch, indices: tokenTypeIds, into: tokenType.gradient, tokens: tokens, width: width)
    }
}
