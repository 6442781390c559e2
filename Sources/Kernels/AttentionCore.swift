/// Multi-head scaled dot-product attention over `[rows, hidden]` query, key and value matrices whose
/// columns are split into heads: head `h` uses columns `h·d ..< (h+1)·d`, and whose rows hold each sequence's
/// tokens as a `TokenLayout` places them.
///
/// For each sequence `b` (real length `L`) and head: `P = softmax(Q Kᵀ / √d)` over the first `L` keys,
/// then `context = dropout(P) · V`. Keys past `L` are padding and are skipped; in a padded layout, padded
/// query rows are still computed, as in the reference, so every output position matches it. A pass may
/// instead compute some queries alone (`Queries.selected`), for a last layer of which a head reads only those
/// rows.
///
/// Nothing is kept for the backward pass but the inputs: it recomputes each pair's `P` from Q and K, with the
/// same product and softmax, so bit for bit, one (sequence, head) pair at a time in per-thread scratch. That
/// costs one of attention's four products again and saves `[batch, heads, T, T]` floats per layer (300 MB
/// over BERT-base's 12 layers at 2 × 512). The dropout mask is a function of the seed and the element's index
/// (`Dropout.applySerial`), so the dropped probabilities `P'` are rebuilt the same way.
///
/// The products read their operands in the core's precision. In bf16 the caller hands over Q, K, V and
/// dL/d(context) already rounded (once per layer, for the whole matrix), and each pair writes its dropped
/// probabilities and its softmax gradient straight into bf16 scratch, so nothing is rounded twice; softmax,
/// its gradient and every product's accumulation stay fp32 (as PyTorch's autocast runs attention's matmuls).
/// The per-pair work lives here, with the other kernels, so that it is optimised in every build.
public struct AttentionCore {
    public let heads: Int
    public let headSize: Int
    public let dropoutProbability: Float
    public let maxLength: Int
    public let precision: Precision

    /// Per pool thread, two `[maxLength, maxLength]` fp32 matrices: a pair's probabilities `P` and its
    /// gradient dL/dP.
    let probabilityScratch: UnsafeMutablePointer<Float>
    /// Per pool thread, two `[maxLength, maxLength]` matrices in the operands' format: a pair's dropped
    /// probabilities `P'` and its score gradient `dS`, the operands of its products.
    let operandScratch: UnsafeMutableRawPointer

    public init(heads: Int, headSize: Int, dropoutProbability: Float, maxBatch: Int, maxLength: Int,
                precision: Precision, pool: BufferPool) {
        self.heads = heads
        self.headSize = headSize
        self.dropoutProbability = dropoutProbability
        self.maxLength = maxLength
        self.precision = precision
        // Dropout numbers its draws by the element's index in `[batch, heads, T, T]`.
        precondition(maxBatch * heads * maxLength * maxLength <= Dropout.maximumStreamLength,
                     "attention over \(maxBatch) sequences of \(maxLength) tokens needs more than 2^32 dropout draws per layer")
        let perThread = maxLength * maxLength
        probabilityScratch = pool.floats(Parallel.workers * 2 * perThread)
        operandScratch = switch precision {
        case .float32, .int8: UnsafeMutableRawPointer(pool.allocate(Parallel.workers * 2 * perThread, of: Float.self))
        case .bfloat16: UnsafeMutableRawPointer(pool.allocate(Parallel.workers * 2 * perThread, of: BFloat16.self))
        }
    }

    private var hidden: Int { heads * headSize }
    private var scale: Float { 1 / Float(headSize).squareRoot() }

    /// The query rows a pass computes: every token's, or a selection (`SelectedRows`: each sequence's `[CLS]`
    /// row for a sequence classifier, the scored tokens for a tagger). With `.selected`, the queries, the
    /// context and their gradients hold the selected rows, compactly; keys and values, and theirs, every token.
    /// A selected row's probabilities, dropout mask and gradients are those it has among all queries.
    public enum Queries: Sendable {
        case all
        case selected(SelectedRows)

        public var isAll: Bool {
            if case .all = self { true } else { false }
        }
    }

    // MARK: - Entry points, one per operand format

    /// Forward pass for training or evaluation: writes `context` (fp32, `[tokens, hidden]`, or one row per
    /// selected query). `firstSequence` is the position of the batch's first sequence in a
    /// larger batch that processes share (`Dropout`'s `first`): the masks are that batch's rows.
    public func forward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                        context: UnsafeMutablePointer<Float>, layout: TokenLayout, queries: Queries = .all,
                        dropout: Float, seed: UInt64, firstSequence: Int = 0) {
        Parallel.forEach(layout.sequences * heads, Forward(
            inputs: Inputs(query, key, value, .float32, core: self), context: context, layout: layout,
            queries: queries, dropout: dropout, seed: seed, firstDraw: firstSequence * heads * layout.length * layout.length))
    }

    /// The same over bf16-rounded Q, K and V.
    public func forward(query: UnsafePointer<BFloat16>, key: UnsafePointer<BFloat16>, value: UnsafePointer<BFloat16>,
                        context: UnsafeMutablePointer<Float>, layout: TokenLayout, queries: Queries = .all,
                        dropout: Float, seed: UInt64, firstSequence: Int = 0) {
        Parallel.forEach(layout.sequences * heads, Forward(
            inputs: Inputs(query, key, value, .bfloat16, core: self), context: context, layout: layout,
            queries: queries, dropout: dropout, seed: seed, firstDraw: firstSequence * heads * layout.length * layout.length))
    }

    /// From dL/d(context), writes dL/dQ, dL/dK and dL/dV (fp32); `queries`, `dropout`, `seed` and
    /// `firstSequence` are the forward pass's.
    public func backward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                         dContext: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>,
                         dKey: UnsafeMutablePointer<Float>, dValue: UnsafeMutablePointer<Float>,
                         layout: TokenLayout, queries: Queries = .all, dropout: Float, seed: UInt64,
                         firstSequence: Int = 0) {
        Parallel.forEach(layout.sequences * heads, Backward(
            inputs: Inputs(query, key, value, .float32, core: self), dContext: UnsafeRawPointer(dContext),
            dQuery: dQuery, dKey: dKey, dValue: dValue, layout: layout, queries: queries, dropout: dropout,
            seed: seed, firstDraw: firstSequence * heads * layout.length * layout.length))
    }

    /// The same over bf16-rounded Q, K, V and dL/d(context).
    public func backward(query: UnsafePointer<BFloat16>, key: UnsafePointer<BFloat16>, value: UnsafePointer<BFloat16>,
                         dContext: UnsafePointer<BFloat16>, dQuery: UnsafeMutablePointer<Float>,
                         dKey: UnsafeMutablePointer<Float>, dValue: UnsafeMutablePointer<Float>,
                         layout: TokenLayout, queries: Queries = .all, dropout: Float, seed: UInt64,
                         firstSequence: Int = 0) {
        Parallel.forEach(layout.sequences * heads, Backward(
            inputs: Inputs(query, key, value, .bfloat16, core: self), dContext: UnsafeRawPointer(dContext),
            dQuery: dQuery, dKey: dKey, dValue: dValue, layout: layout, queries: queries, dropout: dropout,
            seed: seed, firstDraw: firstSequence * heads * layout.length * layout.length))
    }

    // MARK: - Per pair

    /// A loop over (sequence, head) pairs. The loop bodies are not generic, because the pool's workers call a
    /// body through its protocol conformance, and a generic body's conformance runs unspecialised code (a
    /// protocol call per element); each switches on the precision once per pair and calls its `run` for that
    /// element type, which the compiler specialises.
    fileprivate protocol PairLoop: Parallel.IndexBody {
        var inputs: Inputs { get }
        func run<Operand: GemmInput>(_ pair: Int, _: Operand.Type)
    }

    /// Q, K and V of a loop, untyped (see `PairLoop`).
    fileprivate struct Inputs {
        let core: AttentionCore
        let query: UnsafeRawPointer, key: UnsafeRawPointer, value: UnsafeRawPointer

        init<Operand: GemmInput>(_ query: UnsafePointer<Operand>, _ key: UnsafePointer<Operand>,
                                 _ value: UnsafePointer<Operand>, _ precision: Precision, core: AttentionCore) {
            precondition(precision == core.precision, "this attention core reads \(core.precision.rawValue) operands")
            self.core = core
            (self.query, self.key, self.value) = (UnsafeRawPointer(query), UnsafeRawPointer(key), UnsafeRawPointer(value))
        }

        func typed<Operand: GemmInput>(_: Operand.Type)
            -> (q: UnsafePointer<Operand>, k: UnsafePointer<Operand>, v: UnsafePointer<Operand>) {
            (query.assumingMemoryBound(to: Operand.self), key.assumingMemoryBound(to: Operand.self),
             value.assumingMemoryBound(to: Operand.self))
        }
    }

    /// Offsets of one (sequence, head) pair: into the `[rows, hidden]` matrices, and of its first element in
    /// the `[batch, heads, T, T]` probabilities, which numbers its dropout draws.
    private func offsets(_ pair: Int, _ layout: TokenLayout) -> (rows: Int, probs: Int) {
        let b = pair / heads, h = pair % heads
        return (layout.start(b) * hidden + h * headSize, pair * layout.length * layout.length)
    }

    /// A pair's query rows: where they start in Q (and in the context and their gradients), how many there
    /// are, and the position of each in its sequence, which numbers its dropout draws.
    private struct PairQueries {
        let offset: Int
        let count: Int
        /// The selected rows' token-matrix positions, from this pair's first; nil when row `r` is position `r`.
        let positions: UnsafePointer<Int32>?
        /// The token-matrix position of the sequence's first token.
        let sequenceStart: Int

        func position(_ r: Int) -> Int { positions.map { Int($0[r]) - sequenceStart } ?? r }
    }

    private func queryRows(_ pair: Int, _ layout: TokenLayout, _ queries: Queries) -> PairQueries {
        let b = pair / heads, h = pair % heads, T = layout.length
        switch queries {
        case .all:
            return PairQueries(offset: offsets(pair, layout).rows, count: layout.rowCount(b), positions: nil,
                               sequenceStart: b * T)
        case .selected(let selected):
            let rows = selected.rows(ofSequence: b)
            return PairQueries(offset: rows.lowerBound * hidden + h * headSize, count: rows.count,
                               positions: selected.positions + rows.lowerBound, sequenceStart: b * T)
        }
    }

    /// The calling thread's scratch: `P` and dL/dP, and the two operand matrices `P'` and `dS`.
    private func threadScratch<Operand: GemmInput>(_: Operand.Type) -> (
        probabilities: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        attended: UnsafeMutablePointer<Operand>, dScores: UnsafeMutablePointer<Operand>
    ) {
        let size = maxLength * maxLength
        let floats = probabilityScratch + Parallel.threadIndex * 2 * size
        let operands = operandScratch.assumingMemoryBound(to: Operand.self) + Parallel.threadIndex * 2 * size
        return (floats, floats + size, operands, operands + size)
    }

    /// `P = softmax(q Kᵀ / √d)` of one pair over its first `L` keys, for `rows` query rows, into
    /// `probabilities` (stride `T`): the forward pass's, and the backward pass's recomputation of it.
    private func probabilities<Operand: GemmInput>(
        query: UnsafePointer<Operand>, lda: Int, key: UnsafePointer<Operand>, rows: Int, keys L: Int, T: Int,
        into probabilities: UnsafeMutablePointer<Float>
    ) {
        Operand.multiply(.none, .transposed, m: rows, n: L, k: headSize, alpha: scale, a: query, lda: lda,
                         b: key, ldb: hidden, beta: 0, c: probabilities, ldc: T)
        Softmax.forwardRows(probabilities, rows: rows, width: L, stride: T)
    }

    /// The probabilities `p` that a pair attends with (its dropout draws numbered from `s`, row `r` from its
    /// query's position), `queries.count` rows by `L` columns (stride `T`), as product operands: `P` itself in
    /// fp32 without dropout, otherwise `P'` (dropped and/or rounded) written into `scratch`.
    private func attended<Operand: GemmInput>(_ p: UnsafePointer<Float>, pair s: Int, queries: PairQueries,
                                              columns L: Int, stride T: Int, dropout: Float, seed: UInt64,
                                              scratch: UnsafeMutablePointer<Operand>) -> UnsafePointer<Operand> {
        if dropout == 0, Operand.self == Float.self {
            return UnsafeRawPointer(p).assumingMemoryBound(to: Operand.self)
        }
        for r in 0..<queries.count {
            Dropout.applySerial(p + r * T, scratch + r * T, count: L, first: s + queries.position(r) * T,
                                probability: dropout, seed: seed)
        }
        return UnsafePointer(scratch)
    }

    /// `P = softmax(Q Kᵀ / √d)` over the first `L` keys, then `context = P' · V`.
    private struct Forward: PairLoop {
        let inputs: Inputs
        let context: UnsafeMutablePointer<Float>
        let layout: TokenLayout
        let queries: Queries
        let dropout: Float
        let seed: UInt64
        /// The draw of this batch's first probability in the stream (`firstSequence` of the entry points).
        let firstDraw: Int

        func run<Operand: GemmInput>(_ pair: Int, _: Operand.Type) {
            let core = inputs.core
            let (query, key, value) = inputs.typed(Operand.self)
            let (H, d) = (core.hidden, core.headSize)
            let L = layout.lengths[pair / core.heads]
            let T = layout.length
            let (o, pairProbabilities) = core.offsets(pair, layout)
            let s = firstDraw + pairProbabilities
            let pairQueries = core.queryRows(pair, layout, queries)
            let (q, rows) = (pairQueries.offset, pairQueries.count)
            guard rows > 0 else { return }
            let scratch = core.threadScratch(Operand.self)
            core.probabilities(query: query + q, lda: H, key: key + o, rows: rows, keys: L, T: T,
                               into: scratch.probabilities)
            let attended = core.attended(scratch.probabilities, pair: s, queries: pairQueries, columns: L, stride: T,
                                         dropout: dropout, seed: seed, scratch: scratch.attended)
            Operand.multiply(.none, .none, m: rows, n: d, k: L, alpha: 1, a: attended, lda: T, b: value + o, ldb: H,
                             beta: 0, c: context + q, ldc: H)
        }
    }

    /// One pair's whole backward pass, with `P` recomputed and `P'` rebuilt in scratch:
    ///
    ///     P = softmax(Q Kᵀ / √d),  dP' = dC · Vᵀ,  dV = P'ᵀ · dC,  dP = dropout(dP')  (the same mask)
    ///     dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = dS · K / √d,  dK = dSᵀ · Q / √d
    ///
    /// Each row's mask is drawn once, for `P'` and `dP` together. Padded keys get no gradient.
    private struct Backward: PairLoop {
        let inputs: Inputs
        let dContext: UnsafeRawPointer
        let dQuery: UnsafeMutablePointer<Float>, dKey: UnsafeMutablePointer<Float>, dValue: UnsafeMutablePointer<Float>
        let layout: TokenLayout
        let queries: Queries
        let dropout: Float
        let seed: UInt64
        /// The draw of this batch's first probability in the stream (`firstSequence` of the entry points).
        let firstDraw: Int

        func run<Operand: GemmInput>(_ pair: Int, _: Operand.Type) {
            let core = inputs.core
            let (query, key, value) = inputs.typed(Operand.self)
            let dContext = dContext.assumingMemoryBound(to: Operand.self)
            let (H, d) = (core.hidden, core.headSize)
            let L = layout.lengths[pair / core.heads]
            let T = layout.length
            let (o, pairProbabilities) = core.offsets(pair, layout)
            let s = firstDraw + pairProbabilities
            let pairQueries = core.queryRows(pair, layout, queries)
            let (q, rows) = (pairQueries.offset, pairQueries.count)
            guard rows > 0 else {
                // A sequence none of whose queries is computed: its keys and values get no gradient.
                for r in 0..<layout.rowCount(pair / core.heads) {
                    (dKey + o + r * H).update(repeating: 0, count: d)
                    (dValue + o + r * H).update(repeating: 0, count: d)
                }
                return
            }
            let (probabilityScratch, dP, attendedScratch, dS) = core.threadScratch(Operand.self)
            core.probabilities(query: query + q, lda: H, key: key + o, rows: rows, keys: L, T: T,
                               into: probabilityScratch)
            let probabilities = UnsafePointer(probabilityScratch)
            Operand.multiply(.none, .transposed, m: rows, n: L, k: d, alpha: 1, a: dContext + q, lda: H, b: value + o,
                             ldb: H, beta: 0, c: dP, ldc: T)
            let attended: UnsafePointer<Operand>
            if dropout > 0 {
                for r in 0..<rows {
                    Dropout.applySerial(probabilities + r * T, attendedScratch + r * T, gradient: dP + r * T,
                                        count: L, first: s + pairQueries.position(r) * T, probability: dropout,
                                        seed: seed)
                }
                attended = UnsafePointer(attendedScratch)
            } else {
                attended = core.attended(probabilities, pair: s, queries: pairQueries, columns: L, stride: T,
                                         dropout: 0, seed: seed, scratch: attendedScratch)
            }
            for r in 0..<rows {
                Softmax.rowGradient(output: probabilities + r * T, gradient: dP + r * T, into: dS + r * T, width: L)
            }
            Operand.multiply(.transposed, .none, m: L, n: d, k: rows, alpha: 1, a: attended, lda: T, b: dContext + q,
                             ldb: H, beta: 0, c: dValue + o, ldc: H)
            let keyRows = layout.rowCount(pair / core.heads)
            for r in L..<keyRows { (dValue + o + r * H).update(repeating: 0, count: d) }
            Operand.multiply(.none, .none, m: rows, n: d, k: L, alpha: core.scale, a: dS, lda: T, b: key + o, ldb: H,
                             beta: 0, c: dQuery + q, ldc: H)
            Operand.multiply(.transposed, .none, m: L, n: d, k: rows, alpha: core.scale, a: dS, lda: T, b: query + q,
                             ldb: H, beta: 0, c: dKey + o, ldc: H)
            for r in L..<keyRows { (dKey + o + r * H).update(repeating: 0, count: d) }
        }
    }
}

fileprivate extension AttentionCore.PairLoop {
    func callAsFunction(_ pair: Int) {
        switch inputs.core.precision {
        case .float32, .int8: run(pair, Float.self)
        case .bfloat16: run(pair, BFloat16.self)
        }
    }
}
