/// A named tensor of the model: a view of the flat value buffer and the same span of the gradient buffer.
public struct Parameter: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    /// Offset of the first element in the flat buffers.
    public let offset: Int
    public let value: UnsafeMutablePointer<Float>
    public let gradient: UnsafeMutablePointer<Float>
    /// Number of elements: the product of `shape`, kept rather than recomputed because the hot paths ask for it.
    public let count: Int
    public var values: UnsafeMutableBufferPointer<Float> { .init(start: value, count: count) }
    public var gradients: UnsafeMutableBufferPointer<Float> { .init(start: gradient, count: count) }

    /// AdamW's weight decay skips biases and LayerNorm parameters, as in BERT's recipe.
    public var decays: Bool { !name.hasSuffix(".bias") && !name.contains("LayerNorm") }

    /// An embedding table (`embeddings.word_embeddings.weight` and its kin): a batch's lookups write the
    /// gradients of its own rows only, a few hundred of BERT's 30,522 words, so these gradients are cleared by
    /// giving their pages back (`BufferPool.clear`) and are resident only where a batch wrote them.
    public var isLookupTable: Bool { name.hasSuffix("_embeddings.weight") }
}

/// What a module needs: a parameter's checkpoint name and shape, before any memory exists.
public struct ParameterDeclaration: Sendable, Equatable {
    public let name: String
    public let shape: [Int]

    public init(_ name: String, _ shape: [Int]) {
        self.name = name
        self.shape = shape
    }
}

/// Every parameter of a model in one flat float buffer, and every gradient in a second of the same layout,
/// so the optimizer is one loop and loading or exporting is a walk over names.
public final class ParameterStore: @unchecked Sendable {
    public let parameters: [Parameter]
    public let values: UnsafeMutableBufferPointer<Float>
    /// A memory map of zeros at first, so that lookup tables' gradients can be cleared page by page.
    public let gradients: UnsafeMutableBufferPointer<Float>
    private let index: [String: Int]
    private let gradientPool = BufferPool()
    /// The linear layers' weights, which `withFixedWeights` packs (fp32) or quantises (int8).
    private var packable: [PackableWeight] = []
    private var fixedDepth = 0

    public init(_ declarations: [ParameterDeclaration]) {
        let total = declarations.reduce(0) { $0 + $1.shape.reduce(1, *) }
        values = .allocate(capacity: total)
        gradients = .init(start: gradientPool.floats(total), count: total)
        values.initialize(repeating: 0)
        var parameters: [Parameter] = []
        var index: [String: Int] = [:]
        var offset = 0
        for d in declarations {
            precondition(index[d.name] == nil, "parameter \(d.name) declared twice")
            index[d.name] = parameters.count
            let count = d.shape.reduce(1, *)
            parameters.append(Parameter(name: d.name, shape: d.shape, offset: offset, value: values.baseAddress! + offset,
                                        gradient: gradients.baseAddress! + offset, count: count))
            offset += count
        }
        self.parameters = parameters
        self.index = index
    }

    deinit {
        values.deallocate()
    }

    public var count: Int { values.count }

    public subscript(name: String) -> Parameter {
        guard let i = index[name] else { preconditionFailure("no parameter named \(name)") }
        return parameters[i]
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// Sets every parameter as BERT initialises a new model: normal(0, `range`) weights, zero biases, unit
    /// LayerNorm scales (for a model trained from scratch, or a benchmark that needs no checkpoint).
    public func initialiseRandomly(range: Float = 0.02, seed: UInt64) {
        var generator = SeededRandom(seed: seed)
        for p in parameters { CheckpointLoader.initialise(p, range: range, generator: &generator) }
    }

    /// Whether the weights are fixed for a while (`withFixedWeights`): nothing may write them meanwhile.
    public var weightsAreFixed: Bool { fixedDepth > 0 }

    /// Runs `body` (an evaluation, a prediction) with every registered linear layer's weights packed for
    /// inference (`PackedWeights`): the same products to within the order of their sums, faster (the packing
    /// costs one pass over the weights). An int8 layer's weights are quantised here if they were not yet. The
    /// weights must not change inside: the optimizer and the layers' backward passes check. Nested calls pack
    /// once.
    ///
    /// The packed copies live in the gradient buffer, past the embeddings, which must hold zeros (as the
    /// optimizer leaves it after a step, and as it starts): in training that memory is resident anyway, so an
    /// evaluation needs none beyond the run's. It holds zeros again afterwards.
    public func withFixedWeights<T>(_ body: () throws -> T) rethrows -> T {
        if fixedDepth == 0 { fixWeights() }
        fixedDepth += 1
        defer {
            fixedDepth -= 1
            if fixedDepth == 0 { releaseFixedWeights() }
        }
        return try body()
    }

    /// Fixes the weights for the rest of the store's life (packed, or quantised, once): a model loaded only to
    /// predict (`FineTunedModel`), whose every call would otherwise pack them again.
    public func fixWeightsForGood() {
        if fixedDepth == 0 { fixWeights() }
        fixedDepth += 1
    }

    /// The bytes of the gradient buffer that hold packed copies while the weights are fixed.
    private var packedRange = 0..<0

    private func fixWeights() {
        // From the first fp32 layer's weights (past the embeddings) to the end of the buffer.
        let first = packable.filter { $0.quantized == nil }.map(\.weight.offset).min() ?? 0
        let base = UnsafeMutableRawPointer(gradients.baseAddress!), end = gradients.count * MemoryLayout<Float>.stride
        let start = (first * MemoryLayout<Float>.stride + 63) / 64 * 64
        var cursor = start
        let storage = packable.map { weight -> UnsafeMutableRawPointer? in
            guard weight.quantized == nil else { return nil }
            let size = (weight.product.byteCount + 63) / 64 * 64
            guard cursor + size <= end else { return nil }  // its own allocation (`PackableWeight.pack`)
            defer { cursor += size }
            return base + cursor
        }
        packedRange = start..<cursor
        let words = UnsafeRawBufferPointer(start: base + start, count: cursor - start).bindMemory(to: UInt64.self)
        precondition(!words.contains { $0 != 0 }, "weights fixed while gradients are held (they share memory)")
        Parallel.forEach(packable.count, Pack(weights: packable, storage: storage))
    }

    private func releaseFixedWeights() {
        for weight in packable { weight.release() }
        (UnsafeMutableRawPointer(gradients.baseAddress!) + packedRange.lowerBound).initializeMemory(
            as: UInt8.self, repeating: 0, count: packedRange.count)
        packedRange = 0..<0
    }

    private struct Pack: Parallel.IndexBody {
        let weights: [PackableWeight]
        let storage: [UnsafeMutableRawPointer?]
        func callAsFunction(_ index: Int) { weights[index].pack(into: storage[index]) }
    }

    /// The copy that `withFixedWeights` makes of `weight`, a linear layer's `[out, in]` matrix: packed fp32, or
    /// `quantized` (an int8 layer's, made once: such a model only predicts).
    func packableCopy(of weight: Parameter, quantized: QuantizedWeights? = nil) -> PackableWeight {
        let copy = PackableWeight(weight, quantized: quantized)
        packable.append(copy)
        return copy
    }

    public func zeroGradients() {
        for i in parameters.indices {
            clearGradient(parameters[i])
        }
    }

    /// Sets one parameter's gradient to zero: written for most, given back page by page for lookup tables.
    public func clearGradient(_ p: Parameter) {
        clearGradients(offset: p.offset, count: p.count, lookupTables: p.isLookupTable)
    }

    /// Sets a span of the flat gradient buffer to zero, given back page by page when it holds lookup tables
    /// only (the optimizer clears such spans after its update, which only read them).
    public func clearGradients(offset: Int, count: Int, lookupTables: Bool) {
        let start = gradients.baseAddress! + offset
        if lookupTables {
            BufferPool.clear(start, count: count)
        } else {
            start.update(repeating: 0, count: count)
        }
    }
}

/// A linear layer's weight and, while the store's weights are fixed, its packed copy (an int8 layer's: its
/// quantised copy, made the first time and kept).
final class PackableWeight: @unchecked Sendable {
    let weight: Parameter
    let quantized: QuantizedWeights?
    /// The product over the packed copy, made when the weights are first fixed (creating it compiles kernels).
    private(set) lazy var product = PackedWeights(kind: .float32, outFeatures: weight.shape[0], inFeatures: weight.shape[1])
    init(_ weight: Parameter, quantized: QuantizedWeights?) {
        self.weight = weight
        self.quantized = quantized
    }

    /// Whether the packed copy exists (read by every forward pass, so it does not make `product`).
    private var isPacked = false

    /// The product, while the weights are fixed.
    var packed: PackedWeights? { isPacked ? product : nil }

    /// Packs into `storage`, or into the product's own storage when the gradient buffer had no room left.
    func pack(into storage: UnsafeMutableRawPointer?) {
        if let quantized { return quantized.quantizeOnce(weight.value) }
        product.pack(weight.value, into: storage)
        isPacked = true
    }

    func release() {
        guard isPacked else { return }
        isPacked = false
        product.unpack()
    }
}
