/// A fully connected layer as `torch.nn.Linear`: `y = x · Wᵀ + b`, with `W` stored `[out, in]`.
/// (Unchecked like `Parameter`: its buffers are shared memory that one training thread writes.)
public struct Linear: @unchecked Sendable {
    public let weight: Parameter
    public let bias: Parameter
    /// The number format of the layer's three GEMMs (forward, input gradient, weight gradient). With bf16,
    /// each product that reads the weights rounds them into the GEMM's own scratch: a bf16 copy of every
    /// weight, kept from the forward pass for the backward's, would save one rounding pass over the weights per
    /// step (1–2 % of a bf16 BERT-base step at 8 × 128) for 170 MB, about a tenth of its training memory.
    public let precision: Precision
    /// With int8 precision (prediction only), the weights quantised when they are first fixed or at the first
    /// forward pass, whichever comes first (after loading either way).
    let quantized: QuantizedWeights?
    /// With fp32 precision, the weights packed for inference while the store's weights are fixed
    /// (`ParameterStore.withFixedWeights`); with int8, where the weights are quantised when first fixed.
    let packable: PackableWeight?

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public static func declare(_ prefix: String, in inFeatures: Int, out outFeatures: Int) -> [ParameterDeclaration] {
        [.init(prefix + ".weight", [outFeatures, inFeatures]), .init(prefix + ".bias", [outFeatures])]
    }

    public init(_ prefix: String, in store: ParameterStore, precision: Precision = .float32) {
        weight = store[prefix + ".weight"]
        bias = store[prefix + ".bias"]
        self.precision = precision
        quantized = precision == .int8 ? QuantizedWeights(outFeatures: weight.shape[0], inFeatures: weight.shape[1]) : nil
        packable = precision == .bfloat16 ? nil : store.packableCopy(of: weight, quantized: quantized)
    }

    /// `output[rows, out] = input[rows, in] · Wᵀ + b`. `inputStride` lets the rows of the input be spaced
    /// apart (the pooler reads every sequence's first token).
    public func forward(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, inputStride: Int? = nil
    ) {
        forward(.float32(input), output, rows: rows, inputStride: inputStride)
    }

    /// The same from an input that may already be rounded to bf16 (one that several layers read).
    public func forward(
        _ input: GemmOperand, _ output: UnsafeMutablePointer<Float>, rows: Int, inputStride: Int? = nil
    ) {
        if let quantized {
            guard case .float32(let x) = input else { preconditionFailure("int8 products read fp32 inputs") }
            quantized.quantizeOnce(weight.value)
            return Int8Gemm.multiply(x, rows: rows, ldx: inputStride ?? inFeatures, weights: quantized, output,
                                     ldy: outFeatures, bias: bias.value)
        }
        if let packed = packable?.packed, case .float32(let x) = input {
            return packed.multiply(x, rows: rows, ldx: inputStride ?? inFeatures, output, ldy: outFeatures, bias: bias.value)
        }
        Gemm.multiply(.none, .transposed, m: rows, n: outFeatures, k: inFeatures,
                      a: input, lda: inputStride ?? inFeatures, b: .float32(weight.value), ldb: inFeatures,
                      c: output, ldc: outFeatures, bias: bias.value, precision: precision)
    }

    /// The same, the output rounded to bf16 for products that read it (attention's Q, K and V): computed in
    /// fp32 into `scratch` (`[rows, out]`), then rounded into `output`.
    public func forward(
        _ input: GemmOperand, rounding output: UnsafeMutablePointer<BFloat16>, rows: Int,
        inputStride: Int? = nil, scratch: UnsafeMutablePointer<Float>
    ) {
        forward(input, scratch, rows: rows, inputStride: inputStride)
        BFloat16.round(scratch, into: output, count: rows * outFeatures)
    }

    /// Adds to the weight and bias gradients; writes (or, with `accumulate`, adds) the input gradient.
    public func backward(
        input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, rows: Int,
        dInput: UnsafeMutablePointer<Float>?, accumulate: Bool = false,
        inputStride: Int? = nil, dInputStride: Int? = nil
    ) {
        backward(input: .float32(input), dOutput: dOutput, rows: rows, dInput: dInput, accumulate: accumulate,
                 inputStride: inputStride, dInputStride: dInputStride)
    }

    /// The same from an input that may already be rounded to bf16. With bf16 products, `roundedGradient`
    /// (`[rows, out]` bf16 scratch) lets dL/d(output) be rounded once for both products that read it.
    /// `dInput` may be the input's own buffer (without `accumulate`): the weight gradient reads the input first.
    public func backward(
        input: GemmOperand, dOutput: UnsafePointer<Float>, rows: Int,
        dInput: UnsafeMutablePointer<Float>?, accumulate: Bool = false,
        inputStride: Int? = nil, dInputStride: Int? = nil, roundedGradient: UnsafeMutablePointer<BFloat16>? = nil
    ) {
        precondition(quantized == nil, "int8 is for prediction; training reads fp32 or bf16 products")
        precondition(packable?.packed == nil, "a backward pass while the weights are fixed for inference")
        var gradient = GemmOperand.float32(dOutput)
        if precision == .bfloat16, dInput != nil, let roundedGradient {
            BFloat16.round(dOutput, into: roundedGradient, count: rows * outFeatures)
            gradient = .bfloat16(roundedGradient)
        }
        Gemm.multiply(.transposed, .none, m: outFeatures, n: inFeatures, k: rows,
                      a: gradient, lda: outFeatures, b: input, ldb: inputStride ?? inFeatures,
                      beta: 1, c: weight.gradient, ldc: inFeatures, precision: precision)
        Elementwise.accumulateColumnSums(dOutput, into: bias.gradient, rows: rows, width: outFeatures)
        if let dInput {
            Gemm.multiply(.none, .none, m: rows, n: inFeatures, k: outFeatures,
                          a: gradient, lda: outFeatures,
                          b: .float32(weight.value), ldb: inFeatures,
                          beta: accumulate ? 1 : 0, c: dInput, ldc: dInputStride ?? inFeatures, precision: precision)
        }
    }
}

/// `torch.nn.LayerNorm` over the hidden dimension, with the checkpoint's `LayerNorm.weight` and `.bias`.
public struct LayerNormalization: Sendable {
    public let weight: Parameter
    public let bias: Parameter
    public let eps: Float

    public static func declare(_ prefix: String, width: Int) -> [ParameterDeclaration] {
        [.init(prefix + ".weight", [width]), .init(prefix + ".bias", [width])]
    }

    public init(_ prefix: String, in store: ParameterStore, eps: Float) {
        weight = store[prefix + ".weight"]
        bias = store[prefix + ".bias"]
        self.eps = eps
    }

    var width: Int { weight.count }

    func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, saved: NormStatistics, rows: Int) {
        LayerNorm.forward(input, weight: weight.value, bias: bias.value, output: output,
                          mean: saved.mean, rstd: saved.rstd, rows: rows, width: width, eps: eps)
    }

    /// The output of the forward pass that saved `saved`, from the same input, bit for bit.
    func recompute(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, saved: NormStatistics, rows: Int) {
        LayerNorm.recompute(input, weight: weight.value, bias: bias.value, mean: saved.mean, rstd: saved.rstd,
                            output: output, rows: rows, width: width)
    }

    func backward(input: UnsafePointer<Float>, saved: NormStatistics, dOutput: UnsafePointer<Float>,
                  dInput: UnsafeMutablePointer<Float>, rows: Int) {
        LayerNorm.backward(input, mean: saved.mean, rstd: saved.rstd, weight: weight.value, dOutput: dOutput,
                           dInput: dInput, dWeight: weight.gradient, dBias: bias.gradient, rows: rows, width: width)
    }
}

/// Per-row mean and reciprocal standard deviation saved by a LayerNorm forward pass.
struct NormStatistics {
    let mean: UnsafeMutablePointer<Float>
    let rstd: UnsafeMutablePointer<Float>

    init(rows: Int, pool: BufferPool) {
        mean = pool.floats(rows)
        rstd = pool.floats(rows)
    }
}
