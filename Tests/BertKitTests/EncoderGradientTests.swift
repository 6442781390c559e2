import Foundation
import Testing
import BertKit

/// The encoder's backward pass against central differences of its forward pass, in training mode: with
/// dropout on (its masks are fixed by the seed), which the PyTorch fixture, made in evaluation mode, does not cover.
@Suite struct EncoderGradientTests {
    @Test func everyParameterWithDropoutOn() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        #expect(checkpoint.config.hiddenDropoutProb > 0 && checkpoint.config.attentionProbsDropoutProb > 0)
        let store = ParameterStore(BertEncoder.parameters(checkpoint.config))
        _ = try checkpoint.loadWeights(into: store)
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-bert-forward.safetensors"))
        let batch = try EncoderBatch(fixture: golden)
        let encoder = BertEncoder(config: checkpoint.config, store: store, context: BuildContext(for: batch))
        let dHidden = try golden.floats("loss_weight.last_hidden_state")
        let dPooled = try golden.floats("loss_weight.pooler_output")
        let dropout = DropoutMode.training(seed: 1234)

        func loss() -> Double {
            encoder.forward(batch, dropout: dropout)
            var total = 0.0
            for i in 0..<dHidden.count { total += Double(encoder.sequenceOutput[i]) * Double(dHidden[i]) }
            for i in 0..<dPooled.count { total += Double(encoder.pooledOutput[i]) * Double(dPooled[i]) }
            return total
        }

        let training = loss()
        encoder.forward(batch)
        let evaluation = (0..<dHidden.count).reduce(0.0) { $0 + Double(encoder.sequenceOutput[$1]) * Double(dHidden[$1]) }
        #expect(abs(training - loss()) == 0, "the same seed gives the same dropout masks")
        #expect(training != evaluation + (0..<dPooled.count).reduce(0.0) { $0 + Double(encoder.pooledOutput[$1]) * Double(dPooled[$1]) },
                "dropout changes the output in training mode")

        _ = loss()
        store.zeroGradients()
        encoder.backward(dSequenceOutput: dHidden, dPooledOutput: dPooled)

        // Float32 rounding leaves about 1e-5 of noise in the loss: too much to resolve single entries of the
        // queries' and keys' small gradients (about 0.01 each) by finite differences. The derivative along
        // the gradient's own direction is ‖g‖, far above that noise, and comes out wrong unless g points the
        // right way. A step h = 0.1 with Richardson extrapolation, (4·D(h/2) − D(h)) / 3, keeps truncation
        // error at O(h⁴). What remains is float32 noise of a few 1e-3, so the bound is 1e-2: a wrong mask,
        // scale or transpose gives errors of order 1. (The 1e-4 comparison with PyTorch is the precise check.)
        func derivative(_ loss: (Float) -> Double, step h: Float = 0.1) -> Float {
            func central(_ h: Float) -> Double { (loss(h) - loss(-h)) / Double(2 * h) }
            return Float((4 * central(h / 2) - central(h)) / 3)
        }
        for parameter in store.parameters where !parameter.name.hasSuffix("attention.self.key.bias") {
            let g = Array(parameter.gradients)
            let norm = Float(g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            let saved = Array(parameter.values)
            let along = derivative { t in
                for i in 0..<g.count { parameter.value[i] = saved[i] + t * g[i] / norm }
                return loss()
            }
            _ = parameter.values.update(fromContentsOf: saved)
            #expect(abs(along - norm) < 1e-2 * norm, "\(parameter.name): ‖g‖ = \(norm), directional difference \(along)")
        }
    }
}
