/// AdamW over a whole `ParameterStore`, with BERT's exclusions from weight decay (biases and LayerNorm), and
/// clipping of the gradients' global L2 norm. Its moments are two more flat buffers of the store's size.
public final class Optimizer {
    public let parameters: ParameterStore
    public let weightDecay: Float
    public let maxGradNorm: Float
    public let settings: AdamW.Settings
    private let firstMoment: UnsafeMutableBufferPointer<Float>
    private let secondMoment: UnsafeMutableBufferPointer<Float>
    /// The flat buffer as runs of neighbouring parameters that share a weight decay and a way of clearing
    /// their gradients, decided once from their names: a step is a few long AdamW loops, with no string work.
    private let spans: [(offset: Int, count: Int, decay: Float, lookupTable: Bool)]
    public private(set) var step = 0

    /// AdamW's first and second moments, flat in the store's layout: what a checkpoint saves beside `step`.
    public var moments: (first: UnsafeMutableBufferPointer<Float>, second: UnsafeMutableBufferPointer<Float>) {
        (firstMoment, secondMoment)
    }

    /// Continues from a checkpoint: its step count (its moments are written into `moments`).
    public func resume(atStep step: Int) { self.step = step }

    public init(parameters: ParameterStore, weightDecay: Float, maxGradNorm: Float, settings: AdamW.Settings) {
        self.parameters = parameters
        self.weightDecay = weightDecay
        self.maxGradNorm = maxGradNorm
        self.settings = settings
        firstMoment = .allocate(capacity: parameters.count)
        secondMoment = .allocate(capacity: parameters.count)
        firstMoment.initialize(repeating: 0)
        secondMoment.initialize(repeating: 0)
        var spans: [(offset: Int, count: Int, decay: Float, lookupTable: Bool)] = []
        for p in parameters.parameters {
            let decay = p.decays ? weightDecay : 0
            if let last = spans.last, last.decay == decay, last.lookupTable == p.isLookupTable,
               last.offset + last.count == p.offset {
                spans[spans.count - 1].count += p.count
            } else {
                spans.append((p.offset, p.count, decay, p.isLookupTable))
            }
        }
        self.spans = spans
    }

    deinit {
        firstMoment.deallocate()
        secondMoment.deallocate()
    }

    /// Clips the gradients to `maxGradNorm` (as `torch.nn.utils.clip_grad_norm_`), applies one AdamW update
    /// at `learningRate`, and returns the gradient norm before clipping. The gradients are left at zero, ready
    /// for the next step to accumulate into (the update reads and clears them in one pass).
    @discardableResult
    public func update(learningRate: Float) -> Float {
        precondition(!parameters.weightsAreFixed, "an optimizer update while the weights are fixed for inference")
        let gradients = parameters.gradients
        let norm = Float(sumOfSquares(gradients.baseAddress!, count: gradients.count).squareRoot())
        let clip = min(1, maxGradNorm / (norm + 1e-6))
        step += 1
        // Indices, not `for span in spans`: iterating an array allocates in a debug build.
        for i in spans.indices {
            let (offset, count, decay, lookupTable) = spans[i]
            AdamW.update(parameters: parameters.values.baseAddress! + offset,
                         gradients: gradients.baseAddress! + offset, firstMoment: firstMoment.baseAddress! + offset,
                         secondMoment: secondMoment.baseAddress! + offset, count: count, step: step,
                         learningRate: learningRate, weightDecay: decay, gradientScale: clip,
                         clearing: !lookupTable, settings: settings)
            // Embedding tables: the loop only read their gradients (mostly zero pages); the store gives back the pages
            // that the step wrote.
            if lookupTable { parameters.clearGradients(offset: offset, count: count, lookupTables: true) }
        }
        return norm
    }
}
