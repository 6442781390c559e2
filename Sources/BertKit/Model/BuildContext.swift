import Foundation
import Kernels

/// What a model is built for, given once to everything that builds a part of it: the largest batch it runs
/// (sequences, and tokens in each), the number format of its matrix products, and the pool its activation and
/// gradient buffers come from, allocated once for that batch and freed with the model.
public struct BuildContext {
    /// Sequences per forward pass, at most.
    public let maxBatch: Int
    /// Tokens per sequence, at most.
    public let maxLength: Int
    /// The number format of every matrix product's inputs: the dense layers', attention's and the heads'. fp32
    /// or bf16 in training; int8 too in prediction (the products with weights). Accumulation, softmax,
    /// LayerNorm, GELU and the parameters stay fp32.
    public let precision: Precision
    public let pool: BufferPool

    public init(maxBatch: Int, maxLength: Int, precision: Precision = .float32, pool: BufferPool = BufferPool()) {
        precondition(maxBatch >= 1 && maxLength >= 1, "a model is built for at least one sequence of one token")
        (self.maxBatch, self.maxLength, self.precision, self.pool) = (maxBatch, maxLength, precision, pool)
    }

    /// Built for the shape of one batch (a test's or a benchmark's).
    public init(for batch: EncoderBatch, precision: Precision = .float32) {
        self.init(maxBatch: batch.batchSize, maxLength: batch.sequenceLength, precision: precision)
    }

    /// Token rows of the largest batch.
    public var maxTokens: Int { maxBatch * maxLength }

    /// About how many bytes of buffers an encoder of `config` maps for this context, counted without overflow:
    /// per token, each layer's saved activations (Q, K, V, context, sums, the feed-forward input) and attention
    /// probabilities, and the scratch the layers share. An upper bound of what is resident: a page is touched
    /// only when a batch that long writes it.
    public func bufferBytes(_ config: BertConfig) -> Double {
        let (h, i) = (Double(config.hiddenSize), Double(config.intermediateSize))
        let perToken = Double(config.numHiddenLayers) * (8 * h + i + Double(config.numAttentionHeads) * Double(maxLength)) + 12 * h + 3 * i
        return 4 * perToken * Double(maxBatch) * Double(maxLength)
    }

    /// Refuses, before anything is allocated, a context whose buffers would not fit in this machine's memory.
    public func checkFits(_ config: BertConfig) throws {
        let bytes = bufferBytes(config), memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes > memory else { return }
        func gigabytes(_ b: Double) -> String { String(format: b < 1e13 ? "%.1f GB" : "%.3g GB", b / 1e9) }
        throw UsageError("a batch of \(maxBatch) sequences of \(maxLength) tokens needs about \(gigabytes(bytes)) of buffers; this machine "
            + "has \(gigabytes(memory)): lower the batch size (training's or evaluation's) or the maximum length")
    }
}
