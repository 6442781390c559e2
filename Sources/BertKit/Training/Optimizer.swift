/// AdamW over a whole `ParameterStore`, with BERT's exclusions from weight decay (biases and LayerNorm), and
/// clipping of the gradients' global L2 norm. Its moments are two more flat buffers of the store's size.
public final class Optimizer {
    public let parameters: ParameterStore
    public let weightDecay: Float
    public let maxGradNorm: Float
    public let settings: AdamW.Settings
    private let firstMoment: UnsafeMutableBufferPointer<Float>
    private let secondMoment: UnsafeMutableBufferPointer<Float>
    /// Each parameter's weight decay, decided once from its name (no string work in the step).
    private let decay: [Float]
    public private(set) var step = 0

    public init(parameters: ParameterStore, weightDecay: Float, maxGradNorm: Float, settings: AdamW.Settings) {
        self.parameters = parameters
        self.weightDecay = weightDecay
        self.maxGradNorm = maxGradNorm
        self.settings = settings
        firstMoment = .allocate(capacity: parameters.count)
        secondMoment = .allocate(capacity: parameters.count)
        firstMoment.initialize(repeating: 0)
        secondMoment.initialize(repeating: 0)
        decay = parameters.parameters.map { $0.decays ? weightDecay : 0 }
    }

    deinit {
        firstMoment.deallocate()
        secondMoment.deallocate()
    }

    /// Clips the gradients to `maxGradNorm` (as `torch.nn.utils.clip_grad_norm_`), applies one AdamW update
    /// at `learningRate`, and returns the gradient norm before clipping.
    @discardableResult
    public func update(learningRate: Float) -> Float {
        let gradients = parameters.gradients
        let norm = Float(sumOfSquares(gradients.baseAddress!, count: gradients.count).squareRoot())
        let clip = maxGradNorm / (norm + 1e-6)
        if clip < 1 { scale(gradients.baseAddress!, count: gradients.count, by: clip) }
        step += 1
        for (p, decay) in zip(parameters.parameters, decay) {
            AdamW.update(parameters: p.value, gradients: p.gradient,
                         firstMoment: firstMoment.baseAddress! + p.offset, secondMoment: secondMoment.baseAddress! + p.offset,
                         count: p.count, step: step, learningRate: learningRate, weightDecay: decay, settings: settings)
        }
        return norm
    }
}
