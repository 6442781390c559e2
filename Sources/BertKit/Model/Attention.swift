/// Multi-head scaled dot-product attention over `[tokens, hidden]` query, key and value matrices whose
/// columns are split into heads: head `h` uses columns `h·d ..< (h+1)·d`.
///
/// For each sequence `b` (real length `L`) and head: `P = softmax(Q Kᵀ / √d)` over the first `L` keys,
/// then `context = dropout(P) · V`. Keys past `L` are padding and are skipped; padded query rows are still
/// computed, as in the reference, so every output position matches it.
struct AttentionCore {
    let heads: Int
    let headSize: Int
    let dropoutProbability: Float

    // Saved for the backward pass: probabilities before and after dropout, `[batch, heads, T, T]`.
    let probabilities: UnsafeMutablePointer<Float>
    let droppedProbabilities: UnsafeMutablePointer<Float>
    let dropoutMask: UnsafeMutablePointer<UInt8>

    init(heads: Int, headSize: Int, dropoutProbability: Float, maxBatch: Int, maxLength: Int, pool: BufferPool) {
        self.heads = heads
        self.headSize = headSize
        self.dropoutProbability = dropoutProbability
        let count = maxBatch * heads * maxLength * maxLength
        probabilities = pool.floats(count)
        droppedProbabilities = dropoutProbability > 0 ? pool.floats(count) : probabilities
        dropoutMask = pool.bytes(dropoutProbability > 0 ? count : 0)
    }

    private var hidden: Int { heads * headSize }
    private var scale: Float { 1 / Float(headSize).squareRoot() }

    /// Offsets of one (sequence, head) pair: into the `[tokens, hidden]` matrices and into the probabilities.
    private func offsets(_ pair: Int, length T: Int) -> (rows: Int, probs: Int) {
        let b = pair / heads, h = pair % heads
        return (b * T * hidden + h * headSize, pair * T * T)
    }

    func forward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                 context: UnsafeMutablePointer<Float>, lengths: [Int], length T: Int, dropout: DropoutMode, site: Int) {
        let pairs = lengths.count * heads
        let p = dropout.probability(dropoutProbability)
        Parallel.forEach(pairs, Scores(core: self, query: query, key: key, lengths: lengths, T: T))
        let attended = p > 0 ? droppedProbabilities : probabilities
        if p > 0 {
            Dropout.forward(probabilities, droppedProbabilities, mask: dropoutMask, count: pairs * T * T,
                            probability: p, seed: dropout.seed(site: site))
        }
        Parallel.forEach(pairs, Context(core: self, attended: attended, value: value, context: context,
                                        lengths: lengths, T: T))
    }

    /// From dL/d(context), writes dL/dQ, dL/dK and dL/dV. `dProbabilities` is scratch of the probabilities' size.
    func backward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                  dContext: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>, dKey: UnsafeMutablePointer<Float>,
                  dValue: UnsafeMutablePointer<Float>, dProbabilities: UnsafeMutablePointer<Float>,
                  lengths: [Int], length T: Int, dropout: DropoutMode) {
        let pairs = lengths.count * heads
        let p = dropout.probability(dropoutProbability)
        let attended = p > 0 ? droppedProbabilities : probabilities
        Parallel.forEach(pairs, ContextBackward(core: self, attended: attended, value: value, dContext: dContext,
                                                dValue: dValue, dProbabilities: dProbabilities, lengths: lengths, T: T))
        if p > 0 {
            Dropout.backward(dProbabilities, dProbabilities, mask: dropoutMask, count: pairs * T * T, probability: p)
        }
        Parallel.forEach(pairs, ScoresBackward(core: self, query: query, key: key, dQuery: dQuery, dKey: dKey,
                                               dProbabilities: dProbabilities, lengths: lengths, T: T))
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
            Gemm.serial(.none, .transposed, m: T, n: L, k: d, alpha: core.scale, a: query + o, lda: H,
                        b: key + o, ldb: H, c: core.probabilities + s, ldc: T)
            Softmax.forwardRows(core.probabilities + s, rows: T, width: L, stride: T)
        }
    }

    /// `context = P' · V`, with `P'` the probabilities after dropout.
    private struct Context: Parallel.IndexBody {
        let core: AttentionCore
        let attended: UnsafePointer<Float>, value: UnsafePointer<Float>
        let context: UnsafeMutablePointer<Float>
        let lengths: [Int]
        let T: Int

        func callAsFunction(_ pair: Int) {
            let (H, d) = (core.hidden, core.headSize)
            let L = lengths[pair / core.heads]
            let (o, s) = core.offsets(pair, length: T)
            Gemm.serial(.none, .none, m: T, n: d, k: L, a: attended + s, lda: T, b: value + o, ldb: H,
                        c: context + o, ldc: H)
        }
    }

    /// `dP' = dC · Vᵀ` and `dV = P'ᵀ · dC`; padded keys get no gradient.
    private struct ContextBackward: Parallel.IndexBody {
        let core: AttentionCore
        let attended: UnsafePointer<Float>, value: UnsafePointer<Float>, dContext: UnsafePointer<Float>
        let dValue: UnsafeMutablePointer<Float>, dProbabilities: UnsafeMutablePointer<Float>
        let lengths: [Int]
        let T: Int

        func callAsFunction(_ pair: Int) {
            let (H, d) = (core.hidden, core.headSize)
            let L = lengths[pair / core.heads]
            let (o, s) = core.offsets(pair, length: T)
            Gemm.serial(.none, .transposed, m: T, n: L, k: d, a: dContext + o, lda: H, b: value + o, ldb: H,
                        c: dProbabilities + s, ldc: T)
            Gemm.serial(.transposed, .none, m: L, n: d, k: T, a: attended + s, lda: T, b: dContext + o, ldb: H,
                        c: dValue + o, ldc: H)
            for r in L..<T { (dValue + o + r * H).update(repeating: 0, count: d) }
        }
    }

    /// `dS = P ⊙ (dP - rowsum(dP ⊙ P))`, then `dQ = dS · K / √d` and `dK = dSᵀ · Q / √d`.
    private struct ScoresBackward: Parallel.IndexBody {
        let core: AttentionCore
        let query: UnsafePointer<Float>, key: UnsafePointer<Float>
        let dQuery: UnsafeMutablePointer<Float>, dKey: UnsafeMutablePointer<Float>
        let dProbabilities: UnsafeMutablePointer<Float>
        let lengths: [Int]
        let T: Int

        func callAsFunction(_ pair: Int) {
            let (H, d) = (core.hidden, core.headSize)
            let L = lengths[pair / core.heads]
            let (o, s) = core.offsets(pair, length: T)
            Softmax.backwardRows(output: core.probabilities + s, gradient: dProbabilities + s, rows: T, width: L,
                                 stride: T)
            Gemm.serial(.none, .none, m: T, n: d, k: L, alpha: core.scale, a: dProbabilities + s, lda: T,
                        b: key + o, ldb: H, c: dQuery + o, ldc: H)
            Gemm.serial(.transposed, .none, m: L, n: d, k: T, alpha: core.scale, a: dProbabilities + s, lda: T,
                        b: query + o, ldb: H, c: dKey + o, ldc: H)
            for r in L..<T { (dKey + o + r * H).update(repeating: 0, count: d) }
        }
    }
}
