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
    public let gradients: UnsafeMutableBufferPointer<Float>
    private let index: [String: Int]

    public init(_ declarations: [ParameterDeclaration]) {
        let total = declarations.reduce(0) { $0 + $1.shape.reduce(1, *) }
        values = .allocate(capacity: total)
        gradients = .allocate(capacity: total)
        values.initialize(repeating: 0)
        gradients.initialize(repeating: 0)
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
        gradients.deallocate()
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

    public func zeroGradients() {
        gradients.update(repeating: 0)
    }
}
