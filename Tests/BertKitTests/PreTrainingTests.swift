import Foundation
import Testing
@testable import BertKit

@Suite struct PreTrainingHeadTests {
    /// The masked-LM head (decoder tied to the word embeddings) and the NSP head against `BertForPreTraining`.
    @Test func headsLossAndGradientsMatchPyTorch() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-pretraining.safetensors"))
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let batch = try EncoderBatch(fixture: golden)
        let positions = try golden.integers("masked_positions")
        let model = PreTrainingModel(config: checkpoint.config, maxBatch: batch.batchSize, maxLength: batch.sequenceLength,
                                     maxPredictions: positions.count)
        for p in model.parameters.parameters {
            try golden.readFloats("weight." + Self.checkpointName(p.name), into: p.value)
        }
        model.forward(batch, maskedPositions: positions)
        let v = checkpoint.config.vocabSize
        #expect(relativeError(UnsafeBufferPointer(start: model.mlmLogits, count: positions.count * v),
                              try golden.floats("mlm_logits")) < 1e-5)
        #expect(relativeError(UnsafeBufferPointer(start: model.nspLogits, count: batch.batchSize * 2),
                              try golden.floats("nsp_logits")) < 1e-5)
        let loss = model.loss(maskedTokens: try golden.integers("masked_tokens").map(Int32.init),
                              isRandomNext: try golden.integers("next_sentence_label").map { $0 == 1 })
        #expect(abs(loss.mlm + loss.nsp - Double(try golden.floats("loss")[0])) < 1e-5)
        model.parameters.zeroGradients()
        model.backward()
        for p in model.parameters.parameters {
            // Softmax is unchanged when every score of a query row shifts alike, so the key bias has no gradient.
            let error = try gradientError(p, golden, "grad." + Self.checkpointName(p.name),
                                          exactlyZero: p.name.hasSuffix("attention.self.key.bias"))
            #expect(error < 1e-4, "gradient of \(p.name): relative error \(error)")
        }
    }

    static func checkpointName(_ name: String) -> String {
        PreTrainingModel.isHeadParameter(name) ? name : "bert." + name
    }
}
