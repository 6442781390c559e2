import BertKit
import Foundation
import Testing

/// Class weights against PyTorch's weighted cross-entropy (`CrossEntropyLoss(weight:)`, float64) and
/// scikit-learn's balanced weights (Fixtures/tiny-class-weights.safetensors).
@Suite struct ClassWeightTests {
    let golden = try! SafeTensorsFile(path: Fixture.path("tiny-class-weights.safetensors"))
    let config = try! BertCheckpoint(directory: Fixture.path("tiny-bert")).config

    @Test func sequenceClassificationLossAndEveryGradient() throws {
        let batch = try EncoderBatch(fixture: golden, prefix: "sequence.")
        let model = SequenceClassifier(config: config, outputs: 3, context: BuildContext(for: batch),
                                       classWeights: try golden.floats("sequence.class_weights"))
        for p in model.parameters.parameters { try golden.readFloats("sequence.weight." + fixtureName(p.name), into: p.value) }
        model.forward(batch)
        let loss = model.loss(try golden.integers("sequence.labels").map { .label($0) })
        let expected = Double(try golden.floats("sequence.loss")[0])
        #expect(abs(loss - expected) < 1e-5 * max(1, abs(expected)), "loss \(loss), PyTorch \(expected)")
        model.parameters.zeroGradients()
        model.backward()
        for p in model.parameters.parameters {
            let error = try gradientError(p, golden, "sequence.grad." + fixtureName(p.name), exactlyZero: p.name.hasSuffix("attention.self.key.bias"))
            #expect(error < 1e-4, "gradient of \(p.name), relative error \(error)")
        }
    }

    @Test func tokenClassificationLossAndEveryGradient() throws {
        let batch = try EncoderBatch(fixture: golden, prefix: "token.")
        let model = TokenClassifier(config: config, labels: 5, context: BuildContext(for: batch),
                                    classWeights: try golden.floats("token.class_weights"))
        func name(_ p: Parameter) -> String { TokenClassifier.isHeadParameter(p.name) ? p.name : "bert." + p.name }
        for p in model.parameters.parameters { try golden.readFloats("token.weight." + name(p), into: p.value) }
        model.forward(batch)
        let loss = model.loss(try golden.integers("token.labels").map(Int32.init))
        #expect(abs(loss - Double(try golden.floats("token.loss")[0])) < 1e-5)
        model.parameters.zeroGradients()
        model.backward()
        for p in model.parameters.parameters {
            let error = try gradientError(p, golden, "token.grad." + name(p), exactlyZero: p.name.hasSuffix("attention.self.key.bias"))
            #expect(error < 1e-4, "gradient of \(p.name), relative error \(error)")
        }
    }

    @Test func balancedWeightsEqualScikitLearns() throws {
        let labels = ["a", "b", "c", "d"]
        let weights = try ClassWeights.balanced.resolve(labels: labels, targets: try golden.integers("balanced.labels"))
        #expect(relativeError(weights!, try golden.floats("balanced.weights")) < 1e-6)
        #expect(try ClassWeights.none.resolve(labels: labels, targets: [0]) == nil)
        #expect(throws: UsageError.self) { try ClassWeights.balanced.resolve(labels: labels, targets: [0, 1, 2]) }
        #expect(throws: UsageError.self) { try ClassWeights.explicit([1, 2]).resolve(labels: labels, targets: [0]) }
    }

    @Test func theSettingReadsTextAndJSON() {
        #expect(ClassWeights(text: "balanced") == .balanced && ClassWeights(text: "none") == ClassWeights.none)
        #expect(ClassWeights(text: "1, 2.5,0.5") == .explicit([1, 2.5, 0.5]) && ClassWeights(text: "1,x") == nil)
        #expect(ClassWeights(text: "1,-2") == nil, "a negative weight")
        #expect(ClassWeights(json: .array([.integer(1), .number(2.5)])) == .explicit([1, 2.5]))
        #expect(ClassWeights.explicit([1, 2.5]).text == "1,2.5")
    }

    /// A real task (an MRPC slice): `balanced` weights are computed from its training labels and change its loss.
    @Test func aWeightedRunTrainsAndDiffersFromAnUnweightedOne() throws {
        func lossAfterSteps(_ weights: ClassWeights) throws -> (Double, String) {
            let task = try Fixture.task(SequenceClassificationTask.self, "tasks/mrpc-slice.json") {
                $0[.classWeights] = weights
                $0[.maxLength] = 40
            }
            let loss = task.trainStep(BatchShare(whole: Array(task.training.indices.prefix(8))[...]), dropout: .evaluation, gradientScale: 1)
            return (loss, task.dataSummary)
        }
        let (plain, _) = try lossAfterSteps(.none)
        let (weighted, summary) = try lossAfterSteps(.balanced)
        #expect(plain != weighted && summary.contains("class weights"), "\(summary)")
    }
}
