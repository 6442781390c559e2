/// Multi-head scaled dot-product attention over `[tokens, hidden]` query, key and value matrices whose
/// columns are split into heads: head `h` uses columns `h·d ..< (h+1)·d`.
///
/// For each sequence `b` (real length `L`) and head: `P = softmax(Q Kᵀ / √d)` over the first `L` keys,
/// then `context = dropout(P) · V`. Keys past `L` are padding and are skipped; padded query rows are still
/// computed, as in the reference, so every output position matches it.
///
/// Only `P` is kept for the backward pass. The dropout mask is a function of the seed and the element's
/// index (`Dropout.applySerial`), so the dropped probabilities are rebuilt, one (sequence, head) pair at a
/// time in per-thread scratch, where they are needed: storing them and the mask cost more memory than `P`.
///
/// With `precision` bf16 the two products and their four gradient products read bf16-rounded operands (as
/// PyTorch's autocast runs attention's matmuls in bf16); softmax and its gradient stay fp32.
struct AttentionCore {
    let heads: Int
    let headSize: Int
    let dropoutProbability: Float
    let maxLength: Int
    let precision: Precision

    /// Softmax probabilities of the last forward pass, `[batch, heads, T, T]`.
    let probabilities: UnsafeMutablePointer<Float>
    /// Two `[maxLength, maxLength]` matrices per pool thread: a pair's dropped probabilities and its gradient.
    let scratch: UnsafeMutablePointer<Float>
    /// With bf16, per pool thread, the two rounded operands of the product at hand, `roundedSize` each; sized
    /// here so that no thread grows a buffer during a step.
    let rounded: UnsafeMutablePointer<BFloat16>?
    let roundedSize: Int

    init(heads: Int, headSize: Int, dropoutProbability: Float, maxBatch: Int, maxLength: Int, precision: Precision,
         pool: BufferPool) {
        self.heads = heads
        self.headSize = headSize
        self.dropoutProbability = dropoutProbability
        self.maxLength = maxLength
        self.precision = precision
        probabilities = pool.floats(maxBatch * heads * maxLength * maxLength)
        scratch = pool.floats(Parallel.workers * 2 * maxLength * maxLength)
        roundedSize = maxLength * max(maxLength, headSize)
        rounded = precision == .bfloat16 ? pool.allocate(Parallel.workers * 2 * roundedSize, of: BFloat16.self) : nil
    }

    private var hidden: Int { heads * headSize }
    private var scale: Float { 1 / Float(headSize).squareRoot() }

    /// Offsets of one (sequence, head) pair: into the `[tokens, hidden]` matrices and into the probabilities.
    private func offsets(_ pair: Int, length T: Int) -> (rows: Int, probs: Int) {
        let b = pair / heads, h = pair % heads
        return (b * T * hidden + h * headSize, pair * T * T)
    }

    /// The calling thread's two scratch matrices.
    private func threadScratch() -> (dropped: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>) {
        let base = scratch + Parallel.threadIndex * 2 * maxLength * maxLength
        return (base, base + maxLength * maxLength)
    }

    /// The probabilities one pair attends with: `P` itself, or with dropout `P'`, rebuilt in `scratch`.
    private func attended(_ s: Int, rows T: Int, columns L: Int, probability: Float, seed: UInt64,
                          scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let p = UnsafePointer(probabilities + s)
        guard probability > 0 else { return p }
        dropped(p, into: scratch, first: s, rows: T, columns: L, probability: probability, seed: seed)
        return UnsafePointer(scratch)
    }

    /// `P'` of one pair: its probabilities with dropout applied, rows `T` by `L` columns (stride `T`).
    private func dropped(_ probabilities: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
                         first: Int, rows T: Int, columns L: Int, probability: Float, seed: UInt64) {
        for r in 0..<T {
            Dropout.applySerial(probabilities + r * T, output + r * T, count: L, first: first + r * T,
                                probability: probability, seed: seed)
        }
    }

    /// One product of a pair, `c = alpha · op(a) · op(b)`, on the calling thread, in the core's precision.
    private func product(_ ta: Transpose, _ tb: Transpose, m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard let rounded else {
            return Gemm.serial(ta, tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
        }
        let a16 = rounded + Parallel.threadIndex * 2 * roundedSize, b16 = a16 + roundedSize
        let (aRows, aColumns) = ta == .none ? (m, k) : (k, m)
        let (bRows, bColumns) = tb == .none ? (k, n) : (n, k)
        BFloat16.round(rows: aRows, columns: aColumns, a, ld: lda, into: a16)
        BFloat16.round(rows: bRows, columns: bColumns, b, ld: ldb, into: b16)
        Gemm.serial(ta, tb, m: m, n: n, k: k, alpha: alpha, a: a16, lda: aColumns, b: b16, ldb: bColumns, c: c, ldc: ldc)
    }

    func forward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                 context: UnsafeMutablePointer<Float>, lengths: [Int], length T: Int, dropout: DropoutMode, site: Int) {
        let pairs = lengths.count * heads
        Parallel.forEach(pairs, Scores(core: self, query: query, key: key, lengths: lengths, T: T))
        Parallel.forEach(pairs, Context(core: self, value: value, context: context, lengths: lengths, T: T,
                                        dropout: dropout.probability(dropoutProbability), seed: dropout.seed(site: site)))
    }

    /// Evaluation for one query per sequence, its first token: `query` and `context` hold one row per
    /// sequence (`[batch, hidden]`), `key` and `value` every token. No dropout; nothing is kept for a backward pass.
    func forwardFirstQueries(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                             context: UnsafeMutablePointer<Float>, lengths: [Int], length T: Int) {
        Parallel.forEach(lengths.count * heads, FirstQuery(core: self, query: query, key: key, value: value,
                                                           context: context, lengths: lengths, T: T))
    }

    /// From dL/d(context), writes dL/dQ, dL/dK and dL/dV; `dropout` and `site` are the forward pass's.
    func backward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                  dContext: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>, dKey: UnsafeMutablePointer<Float>,
                  dValue: UnsafeMutablePointer<Float>, lengths: [Int], length T: Int, dropout: DropoutMode, site: Int) {
        Parallel.forEach(lengths.count * heads, Backward(
            core: self, query: query, key: key, value: value, dContext: dContext, dQuery: dQuery, dKey: dKey,
            dValue: dValue, lengths: lengths, T: T, dropout: dropout.probability(dropoutProbability),
            seed: dropout.seed(site: site)))
    }

    // The loop bodies, one (sequence, head) pair per index. Each pair's products are serial GEMMs: the pairs
    // already occupy every core.

    /// `P = softmax(Q Kᵀ / √d)` over the first `L` keys.
    private struct Scores: Parallel.IndexBody {
        let core: AttentionCore
        let query: UnsafePointer<Float>, key: UnsafePointer<Float>
        let lengths: [Int]
        let T: Int

        func callAsFunction(_ pair: Int) {
            let (H, d) = (core.hidden, core.headSize)
            let L = lengths[pair / core.heads]
            let (o, s) = core.offsets(pair, length: T)
            core.product(.none, .transposed, m: T, n: L, k: d, alpha: core.scale, a: query + o, lda: H,
                        b: key + o, ldb: H, c: core.probabilities + s, ldc: T)
            Softmax.forwardRows(core.probabilities + s, rows: T, width: L, stride: T)
        }
    }

    /// `context = P' · V`, with `P'` the probabilities after dropout.
    private struct Context: Parallel.IndexBody {
        let core: AttentionCore
        let value: UnsafePointer<Float>
        let context: UnsafeMutablePointer<Float>
        let lengths: [Int]
        let T: Int
        let dropout: Float
        let seed: UInt64

        func callAsFunction(_ pair: Int) {
            let (H, d) = (core.hidden, core.headSize)
            let L = lengths[pair / core.heads]
            let (o, s) = core.offsets(pair, length: T)
            let attended = core.attended(s, rows: T, columns: L, probability: dropout, seed: seed,
                                         scratch: core.threadScratch().dropped)
            core.product(.none, .none, m: T, n: d, k: L, a: attended, lda: T, b: value + o, ldb: H,
                        c: context + o, ldc: H)
        }
    }

    /// `context = softmax(q Kᵀ / √d) · V` for a pair's single query row; the scores go to the pair's first
    /// row of `probabilities`.
    private struct FirstQuery: Parallel.IndexBody {
        let core: AttentionCore
        let query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>
        let context: UnsafeMutablePointer<Float>
        let lengths: [Int]
        let T: Int

        func callAsFunction(_ pair: Int) {
            let (H, d) = (core.hidden, core.headSize)
            let (b, h) = (pair / core.heads, pair % core.heads)
            let L = lengths[b]
            let (o, s) = core.offsets(pair, length: T)
            let row = b * H + h * d
            let scores = core.probabilities + s
            core.product(.none, .transposed, m: 1, n: L, k: d, alpha: core.scale, a: query + row, lda: H,
                         b: key + o, ldb: H, c: scores, ldc: T)
            Softmax.forwardRows(scores, rows: 1, width: L, stride: T)
            core.product(.none, .none, m: 1, n: d, k: L, a: scores, lda: T, b: value + o, ldb: H,
                         c: context + row, ldc: H)
        }
    }

    /// One pair's whole backward pass, with `P'` rebuilt in scratch:
    ///
    ///     dP' = dC · Vᵀ,  dV = P'ᵀ · dC,  dP = dropout(dP')  (the same mask)
    ///     dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = dS · K / √d,  dK = dSᵀ · Q / √d
    ///
    /// Padded keys get no gradient.
    private struct Backward: Parallel.IndexBody {
        let core: AttentionCore
        let query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>
        let dContext: UnsafePointer<Float>
        let dQuery: UnsafeMutablePointer<Float>, dKey: UnsafeMutablePointer<Float>, dValue: UnsafeMutablePointer<Float>
        let lengths: [Int]
        let T: Int
        let dropout: Float
        let seed: UInt64

        func callAsFunction(_ pair: Int) {
            let (H, d) = (core.hidden, core.headSize)
            let L = lengths[pair / core.heads]
            let (o, s) = core.offsets(pair, length: T)
            let probabilities = UnsafePointer(core.probabilities + s)
            let (dropped, dP) = core.threadScratch()
            core.product(.none, .transposed, m: T, n: L, k: d, a: dContext + o, lda: H, b: value + o, ldb: H,
                        c: dP, ldc: T)
            let attended = core.attended(s, rows: T, columns: L, probability: dropout, seed: seed, scratch: dropped)
            if dropout > 0 {
                core.dropped(dP, into: dP, first: s, rows: T, columns: L, probability: dropout, seed: seed)
            }
            core.product(.transposed, .none, m: L, n: d, k: T, a: attended, lda: T, b: dContext + o, ldb: H,
                        c: dValue + o, ldc: H)
            for r in L..<T { (dValue + o + r * H).update(repeating: 0, count: d) }
            Softmax.backwardRows(output: probabilities, gradient: dP, rows: T, width: L, stride: T)
            core.product(.none, .none, m: T, n: d, k: L, alpha: core.scale, a: dP, lda: T,
                        b: key + o, ldb: H, c: dQuery + o, ldc: H)
            core.product(.transposed, .none, m: L, n: d, k: T, alpha: core.scale, a: dP, lda: T,
                        b: query + o, ldb: H, c: dKey + o, ldc: H)
            for r in L..<T { (dKey + o + r * H).update(repeating: 0, count: d) }
        }
    }
}
