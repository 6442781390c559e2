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
    /// The fp32 linear layers' weights, which `withFixedWeights` packs.
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
    /// costs one pass over the weights). The weights must not change inside;
    /// the optimizer and the layers' backward passes check. Nested calls pack once.
    public func withFixedWeights<T>(_ body: () throws -> T) rethrows -> T {
        if fixedDepth == 0 { Parallel.forEach(packable.count, Pack(weights: packable)) }
        fixedDepth += 1
        defer {
            fixedDepth -= 1
            if fixedDepth == 0 { for weight in packable { weight.release() } }
        }
        return try body()
    }

    private struct Pack: Parallel.IndexBody {
        let weights: [PackableWeight]
        func callAsFunction(_ index: Int) { weights[index].pack() }
    }

    /// The packed copy that `withFixedWeights` makes of `weight`, a linear layer's fp32 `[out, in]` matrix.
    func packableCopy(of weight: Parameter) -> PackableWeight {
        let copy = PackableWeight(weight)
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

/// A linear layer's weight and, while the store's weights are fixed, its packed copy.
final class PackableWeight: @unchecked Sendable {
    let weight: Parameter
    private(set) var packed: PackedWeights?

    init(_ weight: Parameter) {
        self.weight = weight
    }

    func pack() {
        packed = PackedWeights(weight.value, kind: .float32, outFeatures: weight.shape[0], inFeatures: weight.shape[1])
    }

    func release() {
        packed = nil
    }
}
