/// One post-LN Transformer layer, `encoder.layer.N` in the checkpoint:
///
///     a = LayerNorm(x + dropout(attention.output.dense(selfAttention(x))))      // BertAttention
///     y = LayerNorm(a + dropout(output.dense(gelu(intermediate.dense(a)))))      // BertIntermediate, BertOutput
struct BertLayer {
    let query, key, value: Linear
    let attentionOutput: Linear
    let attentionNorm: LayerNormalization
    let intermediate: Linear
    let output: Linear
    let outputNorm: LayerNormalization
    let core: AttentionCore
    let hiddenDropout: Float
    let index: Int

    // Saved activations, `[tokens, hidden]` unless noted. Neither LayerNorm's output is kept: each is
    // recomputed from the saved input and statistics where the backward pass needs it (`attentionNormalized`
    // here, the layer's output as the next layer's input), which saves two matrices per layer for one cheap
    // elementwise pass each.
    /// Q, K and V as attention reads them: fp32, or with bf16 products rounded once after their GEMMs (whose
    /// fp32 outputs then go to shared scratch).
    let attentionInputs: AttentionInputs
    let context: UnsafeMutablePointer<Float>
    let attentionSum: UnsafeMutablePointer<Float>      // LayerNorm input: x + dropout(dense(context))
    let attentionStatistics: NormStatistics
    /// `[tokens, intermediate]`. Its GELU, the output layer's input, is not kept: the backward pass recomputes
    /// it into shared scratch, which costs one GELU and saves the layer's largest activation.
    let preActivation: UnsafeMutablePointer<Float>
    let outputSum: UnsafeMutablePointer<Float>
    let outputStatistics: NormStatistics

    static func declare(_ c: BertConfig, index: Int) -> [ParameterDeclaration] {
        let p = "encoder.layer.\(index)."
        let (h, i) = (c.hiddenSize, c.intermediateSize)
        return Linear.declare(p + "attention.self.query", in: h, out: h)
            + Linear.declare(p + "attention.self.key", in: h, out: h)
            + Linear.declare(p + "attention.self.value", in: h, out: h)
            + Linear.declare(p + "attention.output.dense", in: h, out: h)
            + LayerNormalization.declare(p + "attention.output.LayerNorm", width: h)
            + Linear.declare(p + "intermediate.dense", in: h, out: i)
            + Linear.declare(p + "output.dense", in: i, out: h)
            + LayerNormalization.declare(p + "output.LayerNorm", width: h)
    }

    init(_ c: BertConfig, index: Int, store: ParameterStore, context build: BuildContext) {
        let (maxBatch, maxLength, precision, pool) = (build.maxBatch, build.maxLength, build.precision, build.pool)
        let p = "encoder.layer.\(index)."
        self.index = index
        query = Linear(p + "attention.self.query", in: store, precision: precision)
        key = Linear(p + "attention.self.key", in: store, precision: precision)
        value = Linear(p + "attention.self.value", in: store, precision: precision)
        attentionOutput = Linear(p + "attention.output.dense", in: store, precision: precision)
        attentionNorm = LayerNormalization(p + "attention.output.LayerNorm", in: store, eps: c.layerNormEps)
        intermediate = Linear(p + "intermediate.dense", in: store, precision: precision)
        output = Linear(p + "output.dense", in: store, precision: precision)
        outputNorm = LayerNormalization(p + "output.LayerNorm", in: store, eps: c.layerNormEps)
        core = AttentionCore(heads: c.numAttentionHeads, headSize: c.headSize,
                             dropoutProbability: c.attentionProbsDropoutProb,
                             maxBatch: maxBatch, maxLength: maxLength, precision: precision.activationProducts, pool: pool)
        hiddenDropout = c.hiddenDropoutProb

        let n = maxBatch * maxLength
        let (h, i) = (c.hiddenSize, c.intermediateSize)
        attentionInputs = switch precision.activationProducts {
        case .float32, .int8: .float32(q: pool.floats(n * h), k: pool.floats(n * h), v: pool.floats(n * h))
        case .bfloat16: .bfloat16(q: pool.allocate(n * h, of: BFloat16.self), k: pool.allocate(n * h, of: BFloat16.self),
                                  v: pool.allocate(n * h, of: BFloat16.self))
        }
        context = pool.floats(n * h)
        attentionSum = pool.floats(n * h)
        attentionStatistics = NormStatistics(rows: n, pool: pool)
        preActivation = pool.floats(n * i)
        outputSum = pool.floats(n * h)
        outputStatistics = NormStatistics(rows: n, pool: pool)
    }

    private var hidden: Int { query.outFeatures }
    /// Dropout sites of this layer, distinct from every other layer's and from the embeddings' (site 0).
    private func site(_ k: Int) -> Int { 1 + 3 * index + k }

    /// Writes the layer's output for input `x` into `result`, keeping what the backward pass needs.
    ///
    /// With `queries: .selected` the layer computes the selected tokens only (rows that a head alone reads):
    /// keys and values for every token, everything else for the selected rows, written compactly into the
    /// first rows of the layer's buffers and of `result`. Each is the row the whole layer computes, dropout
    /// masks included.
    func forward(_ x: UnsafePointer<Float>, result: UnsafeMutablePointer<Float>, layout: TokenLayout,
                 queries: AttentionCore.Queries = .all, dropout: DropoutMode, scratch: LayerScratch) {
        let tokens = layout.rows
        let (rows, queryInput) = queryRows(x, tokens: tokens, queries, scratch: scratch)
        let attentionNormalized = scratch.normalized
        let (attentionDropout, attentionSeed) = (dropout.probability(core.dropoutProbability), dropout.seed(site: site(0)))

        switch attentionInputs {
        case .float32(let q, let k, let v):
            query.forward(queryInput, q, rows: rows)
            key.forward(x, k, rows: tokens)
            value.forward(x, v, rows: tokens)
            core.forward(query: q, key: k, value: v, context: context, layout: layout, queries: queries,
                         dropout: attentionDropout, seed: attentionSeed, firstSequence: dropout.firstSequence)
        case .bfloat16(let q, let k, let v):
            // The three products read the same input: round it once.
            BFloat16.round(x, into: scratch.roundedInput, count: tokens * hidden)
            let input = GemmOperand.bfloat16(scratch.roundedInput)
            // Selected rows go to the product in fp32, which rounds them to the same bf16 values.
            query.forward(queries.isAll ? input : .float32(queryInput), rounding: q, rows: rows, scratch: scratch.hiddenA)
            key.forward(input, rounding: k, rows: tokens, scratch: scratch.hiddenA)
            value.forward(input, rounding: v, rows: tokens, scratch: scratch.hiddenA)
            core.forward(query: q, key: k, value: v, context: context, layout: layout, queries: queries,
                         dropout: attentionDropout, seed: attentionSeed, firstSequence: dropout.firstSequence)
        }
        attentionOutput.forward(context, attentionSum, rows: rows)
        dropHidden(attentionSum, attentionSum, rows: rows, layout, queries, dropout, site: site(1))
        Elementwise.add(attentionSum, queryInput, attentionSum, count: rows * hidden)
        attentionNorm.forward(attentionSum, attentionNormalized, saved: attentionStatistics, rows: rows)

        intermediate.forward(attentionNormalized, preActivation, rows: rows)
        output.forward(activation(rows: rows, scratch: scratch), outputSum, rows: rows)
        dropHidden(outputSum, outputSum, rows: rows, layout, queries, dropout, site: site(2))
        Elementwise.add(outputSum, attentionNormalized, outputSum, count: rows * hidden)
        outputNorm.forward(outputSum, result, saved: outputStatistics, rows: rows)
    }

    /// The rows whose queries the layer computes, and its input's rows for them: `x` itself, or the selected
    /// rows gathered into scratch.
    private func queryRows(_ x: UnsafePointer<Float>, tokens: Int, _ queries: AttentionCore.Queries,
                           scratch: LayerScratch) -> (count: Int, input: UnsafePointer<Float>) {
        switch queries {
        case .all:
            return (tokens, x)
        case .selected(let selected):
            selected.gather(x, width: hidden, into: scratch.selectedInput)
            return (selected.count, UnsafePointer(scratch.selectedInput))
        }
    }

    /// Dropout on `rows` rows of the hidden width at dropout site `site`, `input` to `output` (which may be the
    /// same): every token's rows, or the selected tokens' with the masks those rows have among all tokens. Its
    /// gradient is the same map.
    private func dropHidden(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int,
                            _ layout: TokenLayout, _ queries: AttentionCore.Queries, _ dropout: DropoutMode, site: Int) {
        let (probability, seed) = (dropout.probability(hiddenDropout), dropout.seed(site: site))
        let first = dropout.first(perSequence: layout.length * hidden)
        switch queries {
        case .all:
            Dropout.forward(input, output, layout: layout, width: hidden, probability: probability, seed: seed,
                            first: first)
        case .selected(let selected):
            Dropout.forward(input, output, selected: selected, width: hidden, probability: probability, seed: seed,
                            first: first)
        }
    }

    /// GELU of the intermediate layer's output for its first `rows` rows, in the format the output layer's
    /// products read: fp32, or bf16 straight from the kernel. The forward pass uses it in passing; the
    /// backward pass recomputes it.
    private func activation(rows: Int, scratch: LayerScratch) -> GemmOperand {
        let count = rows * intermediate.outFeatures
        guard output.precision == .bfloat16 else {
            GELU.forward(preActivation, scratch.intermediate, count: count)
            return .float32(scratch.intermediate)
        }
        GELU.forward(preActivation, scratch.roundedActivation, count: count)
        return .bfloat16(scratch.roundedActivation)
    }

    /// The output of the last `forward`, recomputed into `result` (the next layer's input, for its backward pass).
    func recomputeResult(_ result: UnsafeMutablePointer<Float>, rows: Int) {
        outputNorm.recompute(outputSum, result, saved: outputStatistics, rows: rows)
    }

    /// On entry `gradient` holds dL/d(result); on return it holds dL/dx. `x` is the forward pass's input,
    /// `queries` the forward pass's. With `.selected`, dL/d(result) is one row per selected token (the first
    /// rows of `gradient`), and dL/dx comes back for every token: the skip connection's and the query's
    /// gradients reach the selected tokens' rows, the keys' and values' every row.
    func backward(_ x: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, layout: TokenLayout,
                  queries: AttentionCore.Queries = .all, dropout: DropoutMode, scratch: LayerScratch) {
        let tokens = layout.rows
        let (rows, queryInput) = queryRows(x, tokens: tokens, queries, scratch: scratch)
        let (residual, dense) = (scratch.hiddenA, scratch.hiddenB)

        // Feed-forward block. `residual` carries dL/d(attentionNormalized) through the skip connection.
        outputNorm.backward(input: outputSum, saved: outputStatistics, dOutput: gradient, dInput: residual, rows: rows)
        dropHidden(residual, dense, rows: rows, layout, queries, dropout, site: site(2))
        output.backward(input: activation(rows: rows, scratch: scratch), dOutput: dense, rows: rows,
                        dInput: scratch.intermediate, roundedGradient: scratch.roundedGradient)
        GELU.backward(preActivation, scratch.intermediate, scratch.intermediate, count: rows * intermediate.outFeatures)
        let attentionNormalized = scratch.normalized
        attentionNorm.recompute(attentionSum, attentionNormalized, saved: attentionStatistics, rows: rows)
        intermediate.backward(input: .float32(attentionNormalized), dOutput: scratch.intermediate, rows: rows,
                              dInput: residual, accumulate: true, roundedGradient: scratch.roundedGradient)

        // Attention block. dL/d(attentionSum) is also dL/dx of the query rows through the skip connection:
        // `queryGradient` carries it, `gradient` itself when every row is a query row.
        let queryGradient = queries.isAll ? gradient : scratch.selectedGradient
        attentionNorm.backward(input: attentionSum, saved: attentionStatistics, dOutput: residual,
                               dInput: queryGradient, rows: rows)
        dropHidden(queryGradient, dense, rows: rows, layout, queries, dropout, site: site(1))
        attentionOutput.backward(input: .float32(context), dOutput: dense, rows: rows, dInput: scratch.dContext,
                                 roundedGradient: scratch.roundedGradient)
        let (attentionDropout, attentionSeed) = (dropout.probability(core.dropoutProbability), dropout.seed(site: site(0)))
        let input: GemmOperand, queryOperand: GemmOperand
        switch attentionInputs {
        case .float32(let q, let k, let v):
            core.backward(query: q, key: k, value: v, dContext: scratch.dContext, dQuery: scratch.dQuery,
                          dKey: scratch.dKey, dValue: scratch.dValue, layout: layout, queries: queries,
                          dropout: attentionDropout, seed: attentionSeed, firstSequence: dropout.firstSequence)
            (input, queryOperand) = (.float32(x), .float32(queryInput))
        case .bfloat16(let q, let k, let v):
            BFloat16.round(scratch.dContext, into: scratch.roundedGradient, count: rows * hidden)
            core.backward(query: q, key: k, value: v, dContext: scratch.roundedGradient, dQuery: scratch.dQuery,
                          dKey: scratch.dKey, dValue: scratch.dValue, layout: layout, queries: queries,
                          dropout: attentionDropout, seed: attentionSeed, firstSequence: dropout.firstSequence)
            // The three weight gradients read the same input: round it once.
            BFloat16.round(x, into: scratch.roundedInput, count: tokens * hidden)
            input = .bfloat16(scratch.roundedInput)
            queryOperand = queries.isAll ? input : .float32(queryInput)
        }
        query.backward(input: queryOperand, dOutput: scratch.dQuery, rows: rows, dInput: queryGradient,
                       accumulate: true, roundedGradient: scratch.roundedGradient)
        if case .selected(let selected) = queries {
            // The selected rows' dL/dx so far into their rows; the others' come from keys and values alone.
            gradient.update(repeating: 0, count: tokens * hidden)
            selected.scatter(queryGradient, width: hidden, into: gradient)
        }
        key.backward(input: input, dOutput: scratch.dKey, rows: tokens, dInput: gradient, accumulate: true,
                     roundedGradient: scratch.roundedGradient)
        value.backward(input: input, dOutput: scratch.dValue, rows: tokens, dInput: gradient, accumulate: true,
                       roundedGradient: scratch.roundedGradient)
    }
}

/// Temporaries shared by all layers, since each pass visits one layer at a time: mostly gradients, and the
/// GELU output, which the forward pass uses in passing and the backward pass recomputes.
struct LayerScratch {
    /// dL/d(hidden states) between layers; the other buffers are each layer's temporaries.
    let dHidden: UnsafeMutablePointer<Float>
    /// The forward pass's hidden states between layers, alternately in one and the other (the last layer's
    /// output goes to the encoder's own buffer). In the backward pass `states.0` holds a layer's input, recomputed.
    let states: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    /// A layer's attention LayerNorm output, the feed-forward block's input: written by the forward pass, and
    /// recomputed by the backward pass.
    let normalized: UnsafeMutablePointer<Float>
    let hiddenA, hiddenB, dContext, dQuery, dKey, dValue: UnsafeMutablePointer<Float>
    /// `[tokens, intermediate]`: the GELU output (for fp32 products), recomputed for the backward pass, which
    /// then overwrites it with its gradient (a dense layer's backward pass reads its input before it writes
    /// dL/d(input)).
    let intermediate: UnsafeMutablePointer<Float>
    /// The GELU output in bf16, for bf16 products (then `intermediate` holds only the gradient).
    let roundedActivation: UnsafeMutablePointer<BFloat16>
    /// With bf16 products, a layer's input rounded once for the three products that read it (`[tokens,
    /// hidden]`), and a gradient rounded once for the products that read it (`[tokens, intermediate]`: a
    /// dense layer's dL/d(output), or dL/d(context) for attention's four). Never written, so never resident,
    /// in fp32.
    let roundedInput, roundedGradient: UnsafeMutablePointer<BFloat16>
    /// With selected query rows (`AttentionCore.Queries.selected`), a layer's input rows for them, gathered,
    /// and their dL/d(input) from the skip connection and the query until it joins the other rows'.
    let selectedInput, selectedGradient: UnsafeMutablePointer<Float>

    init(_ c: BertConfig, context: BuildContext) {
        let (maxBatch, maxLength, pool) = (context.maxBatch, context.maxLength, context.pool)
        let n = maxBatch * maxLength * c.hiddenSize
        dHidden = pool.floats(n)
        states = (pool.floats(n), pool.floats(n))
        normalized = pool.floats(n)
        (hiddenA, hiddenB, dContext) = (pool.floats(n), pool.floats(n), pool.floats(n))
        (dQuery, dKey, dValue) = (pool.floats(n), pool.floats(n), pool.floats(n))
        intermediate = pool.floats(maxBatch * maxLength * c.intermediateSize)
        roundedActivation = pool.allocate(maxBatch * maxLength * c.intermediateSize, of: BFloat16.self)
        roundedInput = pool.allocate(n, of: BFloat16.self)
        roundedGradient = pool.allocate(maxBatch * maxLength * c.intermediateSize, of: BFloat16.self)
        (selectedInput, selectedGradient) = (pool.floats(n), pool.floats(n))
    }
}

/// The matrices a layer's attention reads, in the format of its products.
enum AttentionInputs {
    case float32(q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>)
    case bfloat16(q: UnsafeMutablePointer<BFloat16>, k: UnsafeMutablePointer<BFloat16>, v: UnsafeMutablePointer<BFloat16>)
}
