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
        let (H, d) = (hidden, headSize)
        Parallel.forEach(pairs) { pair in
            let L = lengths[pair / heads]
            let (o, s) = offsets(pair, length: T)
            Gemm.serial(.none, .transposed, m: T, n: L, k: d, alpha: scale, a: query + o, lda: H,
                        b: key + o, ldb: H, c: probabilities + s, ldc: T)
            Softmax.forwardRows(probabilities + s, rows: T, width: L, stride: T)
        }
        let attended = p > 0 ? droppedProbabilities : probabilities
        if p > 0 {
            Dropout.forward(probabilities, droppedProbabilities, mask: dropoutMask, count: pairs * T * T,
                            probability: p, seed: dropout.seed(site: site))
        }
        Parallel.forEach(pairs) { pair in
            let L = lengths[pair / heads]
            let (o, s) = offsets(pair, length: T)
            Gemm.serial(.none, .none, m: T, n: d, k: L, a: attended + s, lda: T, b: value + o, ldb: H,
                        c: context + o, ldc: H)
        }
    }

    /// From dL/d(context), writes dL/dQ, dL/dK and dL/dV. `dProbabilities` is scratch of the probabilities' size.
    func backward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                  dContext: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>, dKey: UnsafeMutablePointer<Float>,
                  dValue: UnsafeMutablePointer<Float>, dProbabilities: UnsafeMutablePointer<Float>,
                  lengths: [Int], length T: Int, dropout: DropoutMode) {
        let pairs = lengths.count * heads
        let p = dropout.probability(dropoutProbability)
        let attended = p > 0 ? droppedProbabilities : probabilities
        let (H, d) = (hidden, headSize)
        Parallel.forEach(pairs) { pair in
            let L = lengths[pair / heads]
            let (o, s) = offsets(pair, length: T)
            // dP' = dC · Vᵀ and dV = P'ᵀ · dC; padded keys get no gradient.
            Gemm.serial(.none, .transposed, m: T, n: L, k: d, a: dContext + o, lda: H, b: value + o, ldb: H,
                        c: dProbabilities + s, ldc: T)
            Gemm.serial(.transposed, .none, m: L, n: d, k: T, a: attended + s, lda: T, b: dContext + o, ldb: H,
                        c: dValue + o, ldc: H)
            for r in L..<T { (dValue + o + r * H).update(repeating: 0, count: d) }
        }
        if p > 0 {
            Dropout.backward(dProbabilities, dProbabilities, mask: dropoutMask, count: pairs * T * T, probability: p)
        }
        Parallel.forEach(pairs) { pair in
            let L = lengths[pair / heads]
            let (o, s) = offsets(pair, length: T)
            // dS = P ⊙ (dP - rowsum(dP ⊙ P)); the 1/√d of the scores goes into the GEMMs' alpha.
            Softmax.backwardRows(output: probabilities + s, gradient: dProbabilities + s, rows: T, width: L, stride: T)
            Gemm.serial(.none, .none, m: T, n: d, k: L, alpha: scale, a: dProbabilities + s, lda: T,
                        b: key + o, ldb: H, c: dQuery + o, ldc: H)
            Gemm.serial(.transposed, .none, m: L, n: d, k: T, alpha: scale, a: dProbabilities + s, lda: T,
                        b: query + o, ldb: H, c: dKey + o, ldc: H)
            for r in L..<T { (dKey + o + r * H).update(repeating: 0, count: d) }
        }
    }
}
