import Foundation
import Testing
import BertKit

/// The encoder against PyTorch + transformers on the same checkpoints and inputs.
@Suite struct EncoderParityTests {
    /// A random 2-layer BERT with padded pair inputs: hidden states, pooled output and every gradient.
    @Test func tinyBertForwardAndGradientsMatchPyTorch() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let store = ParameterStore(BertEncoder.parameters(checkpoint.config))
        let report = try checkpoint.loadWeights(into: store)
        #expect(report.initialised.isEmpty)
        #expect(report.loaded.count == store.parameters.count)

        let golden = try SafeTensorsFile(path: Fixture.path("tiny-bert-forward.safetensors"))
        let batch = try EncoderBatch(fixture: golden)
        let encoder = BertEncoder(config: checkpoint.config, store: store, context: BuildContext(for: batch))
        encoder.forward(batch)

        let hidden = UnsafeBufferPointer(start: encoder.sequenceOutput, count: batch.tokenCount * checkpoint.config.hiddenSize)
        let pooled = UnsafeBufferPointer(start: encoder.pooledOutput, count: batch.batchSize * checkpoint.config.hiddenSize)
        #expect(relativeError(hidden, try golden.floats("last_hidden_state")) < 1e-5)
        #expect(relativeError(pooled, try golden.floats("pooler_output")) < 1e-5)

        // loss = Σ hidden ⊙ W₁ + Σ pooled ⊙ W₂, so dL/dhidden = W₁ and dL/dpooled = W₂.
        let dHidden = try golden.floats("loss_weight.last_hidden_state")
        let dPooled = try golden.floats("loss_weight.pooler_output")
        let loss = zip(hidden, dHidden).reduce(0) { $0 + Double($1.0 * $1.1) } + zip(pooled, dPooled).reduce(0) { $0 + Double($1.0 * $1.1) }
        let expectedLoss = try golden.floats("loss")[0]
        #expect(abs(Float(loss) - expectedLoss) <= 1e-5 * max(1, abs(expectedLoss)))

        store.zeroGradients()
        encoder.backward(dSequenceOutput: dHidden, dPooledOutput: dPooled)
        for parameter in store.parameters {
            let error = try gradientError(parameter, golden, "grad." + parameter.name,
                                          exactlyZero: parameter.name.hasSuffix("attention.self.key.bias"))
            #expect(error < 1e-4, "gradient of \(parameter.name): relative error \(error)")
        }
    }

    /// The real all-MiniLM-L6-v2 on MRPC sentences and pairs: the last hidden states.
    @Test func miniLMHiddenStatesMatchPyTorch() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.miniLMDirectory)
        let store = ParameterStore(BertEncoder.parameters(checkpoint.config))
        let report = try checkpoint.loadWeights(into: store)
        #expect(report.ignored == ["embeddings.position_ids"])
        #expect(report.initialised.isEmpty)

        let golden = try SafeTensorsFile(path: Fixture.path("minilm-forward.safetensors"))
        let batch = try EncoderBatch(fixture: golden)
        let encoder = BertEncoder(config: checkpoint.config, store: store, context: BuildContext(for: batch))
        encoder.forward(batch)
        let hidden = UnsafeBufferPointer(start: encoder.sequenceOutput, count: batch.tokenCount * checkpoint.config.hiddenSize)
        let pooled = UnsafeBufferPointer(start: encoder.pooledOutput, count: batch.batchSize * checkpoint.config.hiddenSize)
        #expect(relativeError(hidden, try golden.floats("last_hidden_state")) < 1e-4)
        #expect(relativeError(pooled, try golden.floats("pooler_output")) < 1e-4)
    }
}
