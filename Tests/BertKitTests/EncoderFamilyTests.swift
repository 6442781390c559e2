import Foundation
import Testing
import BertKit

/// RoBERTa and XLM-RoBERTa against transformers' own classes of each family (scripts/fixtures/
/// make_family_fixtures.py): positions numbered from past the padding id, `roberta.` tensors, RoBERTa's
/// classification head; logits, loss and every gradient of each head, in float64 on the reference side.
@Suite struct EncoderFamilyTests {
    static let families = ["roberta", "xlm-roberta"]

    struct Fixture {
        let checkpoint: BertCheckpoint
        let golden: SafeTensorsFile
        let batch: EncoderBatch

        init(_ family: String) throws {
            checkpoint = try BertCheckpoint(directory: BertKitTests.Fixture.path("tiny-\(family)"))
            golden = try SafeTensorsFile(path: BertKitTests.Fixture.path("tiny-\(family)-heads.safetensors"))
            batch = try EncoderBatch(fixture: golden)
        }

        /// The fixture's name of a parameter: the encoder's under the family's prefix, the head's as they are. A
        /// masked-LM model lists its tied word embeddings under whichever name transformers met first: for
        /// XLM-R, `lm_head.decoder.weight`.
        func fileName(_ p: Parameter, head: String, isHead: (String) -> Bool) -> String {
            let name = isHead(p.name) ? p.name : checkpoint.config.family.weightPrefix + p.name
            let tied = "lm_head.decoder.weight"
            return p.name == "embeddings.word_embeddings.weight" && !golden.names.contains("\(head).weight.\(name)")
                && golden.names.contains("\(head).weight.\(tied)") ? tied : name
        }

        func load(_ store: ParameterStore, head: String, isHead: (String) -> Bool) throws {
            for p in store.parameters { try golden.readFloats("\(head).weight.\(fileName(p, head: head, isHead: isHead))", into: p.value) }
        }

        func expectGradients(_ store: ParameterStore, head: String, isHead: (String) -> Bool, exactlyZero: (String) -> Bool) throws {
            for p in store.parameters {
                let error = try gradientError(p, golden, "\(head).grad.\(fileName(p, head: head, isHead: isHead))", exactlyZero: exactlyZero(p.name))
                #expect(error < 1e-4, "\(head): gradient of \(p.name), relative error \(error)")
            }
        }
    }

    @Test(arguments: families)
    func configNamesTheFamilyAndItsPositions(_ family: String) throws {
        let config = try Fixture(family).checkpoint.config
        #expect(config.family.rawValue == family)
        #expect(config.family.firstPosition(config) == 2)
        #expect(config.maxSequenceLength == 40)  // 42 position embeddings, the first two kept for padding
        #expect(config.family.architecture("BertForTokenClassification")
                == (family == "roberta" ? "RobertaForTokenClassification" : "XLMRobertaForTokenClassification"))
    }

    @Test(arguments: families, [("classification", 3), ("regression", 1)])
    func sequenceClassificationMatchesPyTorch(_ family: String, head: (kind: String, outputs: Int)) throws {
        let f = try Fixture(family)
        let model = SequenceClassifier(config: f.checkpoint.config, outputs: head.outputs, context: BuildContext(for: f.batch))
        #expect(model.parameters.contains("classifier.dense.weight") && model.parameters.contains("classifier.out_proj.weight"))
        #expect(!model.parameters.contains("pooler.dense.weight"))
        try f.load(model.parameters, head: head.kind, isHead: SequenceClassifier.isHeadParameter)
        model.forward(f.batch)
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: f.batch.batchSize * head.outputs))
        #expect(relativeError(logits, try f.golden.floats("\(head.kind).logits")) < 1e-5)
        let targets: [Target] = head.outputs == 1
            ? try f.golden.floats("\(head.kind).labels").map { .value($0) }
            : try f.golden.integers("\(head.kind).labels").map { .label($0) }
        let loss = model.loss(targets), expected = Double(try f.golden.floats("\(head.kind).loss")[0])
        #expect(abs(loss - expected) < 1e-5 * max(1, abs(expected)))
        model.parameters.zeroGradients()
        model.backward()
        try f.expectGradients(model.parameters, head: head.kind, isHead: SequenceClassifier.isHeadParameter,
                              exactlyZero: { $0.hasSuffix("attention.self.key.bias") })
    }

    @Test(arguments: families)
    func tokenClassificationMatchesPyTorch(_ family: String) throws {
        let f = try Fixture(family)
        let model = TokenClassifier(config: f.checkpoint.config, labels: 5, context: BuildContext(for: f.batch))
        try f.load(model.parameters, head: "token", isHead: TokenClassifier.isHeadParameter)
        let labels = try f.golden.integers("token.labels").map(Int32.init)
        model.forward(f.batch, scoring: { labels[$0] != TokenClassifier.ignored })
        let scored = labels.indices.filter { labels[$0] != TokenClassifier.ignored }
        let expected = try f.golden.floats("token.logits")
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: scored.count * 5))
        #expect(relativeError(logits, scored.flatMap { expected[($0 * 5)..<($0 * 5 + 5)] }) < 1e-5)
        #expect(abs(model.loss(labels) - Double(try f.golden.floats("token.loss")[0])) < 1e-5)
        model.parameters.zeroGradients()
        model.backward()
        try f.expectGradients(model.parameters, head: "token", isHead: TokenClassifier.isHeadParameter,
                              exactlyZero: { $0.hasSuffix("attention.self.key.bias") })
    }

    @Test(arguments: families)
    func questionAnsweringMatchesPyTorch(_ family: String) throws {
        let f = try Fixture(family)
        let model = QuestionAnsweringModel(config: f.checkpoint.config, context: BuildContext(for: f.batch))
        try f.load(model.parameters, head: "qa", isHead: QuestionAnsweringModel.isHeadParameter)
        model.forward(f.batch)
        let T = f.batch.sequenceLength
        let starts = (0..<f.batch.batchSize).flatMap { b in (0..<T).map { model.startLogit(sequence: b, token: $0) } }
        let ends = (0..<f.batch.batchSize).flatMap { b in (0..<T).map { model.endLogit(sequence: b, token: $0) } }
        #expect(relativeError(starts, try f.golden.floats("qa.start_logits")) < 1e-5)
        #expect(relativeError(ends, try f.golden.floats("qa.end_logits")) < 1e-5)
        let loss = model.loss(starts: try f.golden.integers("qa.start_positions"), ends: try f.golden.integers("qa.end_positions"))
        #expect(abs(loss - Double(try f.golden.floats("qa.loss")[0])) < 1e-5)
        model.parameters.zeroGradients()
        model.backward()
        let last = f.checkpoint.config.numHiddenLayers - 1
        try f.expectGradients(model.parameters, head: "qa", isHead: QuestionAnsweringModel.isHeadParameter, exactlyZero: {
            $0.hasSuffix("attention.self.key.bias") || $0 == "qa_outputs.bias" || $0 == "encoder.layer.\(last).output.LayerNorm.bias"
        })
    }

    /// Masked LM alone (`<Family>ForMaskedLM`: `lm_head.*`, no pooler, no next-sentence head).
    @Test(arguments: families)
    func maskedLanguageModellingMatchesPyTorch(_ family: String) throws {
        let f = try Fixture(family)
        let labels = try f.golden.integers("mlm.labels")
        let positions = labels.indices.filter { labels[$0] != -100 }
        let model = PreTrainingModel(config: f.checkpoint.config, context: BuildContext(for: f.batch), maxPredictions: positions.count,
                                     nextSentencePrediction: false)
        #expect(model.parameters.contains("lm_head.dense.weight") && model.parameters.contains("lm_head.layer_norm.weight")
                && !model.parameters.contains("pooler.dense.weight") && !model.parameters.contains("cls.seq_relationship.weight"))
        try f.load(model.parameters, head: "mlm", isHead: PreTrainingModel.isHeadParameter)
        model.forward(f.batch, maskedPositions: positions)
        let v = f.checkpoint.config.vocabSize, expected = try f.golden.floats("mlm.logits")
        let logits = Array(UnsafeBufferPointer(start: model.mlmLogits, count: positions.count * v))
        #expect(relativeError(logits, positions.flatMap { expected[($0 * v)..<(($0 + 1) * v)] }) < 1e-5)
        let loss = model.loss(maskedTokens: positions.map { Int32(labels[$0]) }, isRandomNext: Array(repeating: false, count: f.batch.batchSize))
        #expect(abs(loss.mlm - Double(try f.golden.floats("mlm.loss")[0])) < 1e-5 && loss.nsp == 0)
        model.parameters.zeroGradients()
        model.backward()
        try f.expectGradients(model.parameters, head: "mlm", isHead: PreTrainingModel.isHeadParameter,
                              exactlyZero: { $0.hasSuffix("attention.self.key.bias") })
    }

    /// RoBERTa's head drops out the `<s>` hidden state before its dense layer: with dropout on, the pass that
    /// computes the `<s>` rows alone in the last layer gives the full pass's logits, loss and gradients (the same
    /// masks), and those differ from a pass without that dropout.
    @Test(arguments: families)
    func theHeadsDropoutIsTheSameOnEitherPath(_ family: String) throws {
        let f = try Fixture(family)
        let model = SequenceClassifier(config: f.checkpoint.config, outputs: 3, context: BuildContext(for: f.batch))
        try f.load(model.parameters, head: "classification", isHead: SequenceClassifier.isHeadParameter)
        let targets = try f.golden.integers("classification.labels").map { Target.label($0) }
        func pass(firstTokensOnly: Bool, seed: UInt64) -> PassResults {
            model.lastLayerFirstTokensOnly = firstTokensOnly
            model.forward(f.batch, dropout: .training(seed: seed))
            return PassResults(logits: Array(UnsafeBufferPointer(start: model.logits, count: 9)), loss: model.loss(targets),
                               parameters: model.parameters, backward: model.backward)
        }
        let full = pass(firstTokensOnly: false, seed: 3)
        expectSameResults(pass(firstTokensOnly: true, seed: 3), full, model.parameters, family)
        #expect(pass(firstTokensOnly: true, seed: 4).logits != full.logits)
    }

    /// A model folder of the family with a real tokenizer: the fixture's weights and the tokenizer.json of its kind.
    static func modelFolder(_ family: String) throws -> String {
        let tokenizer = family == "roberta" ? "roberta-bpe" : "xlmr-unigram"
        let folder = NSTemporaryDirectory() + "bertkit-\(family)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: BertKitTests.Fixture.path("tiny-\(family)-\(tokenizer)/\(name)"), toPath: folder + "/" + name)
        }
        try FileManager.default.copyItem(atPath: BertKitTests.Fixture.path("tokenizers/\(tokenizer)/tokenizer.json"), toPath: folder + "/tokenizer.json")
        return folder
    }

    /// Fine-tuning end to end on real MRPC pairs: `<s> A </s></s> B </s>` through the tokenizer's template, a few
    /// steps, an export that names the family's class and tensors and carries the tokenizer.json, and
    /// `FineTunedModel` over the export giving the trained model's probabilities.
    @Test(arguments: families)
    func fineTunesExportsAndPredicts(_ family: String) throws {
        let folder = try Self.modelFolder(family), export = folder + "-export"
        defer { for f in [folder, export] { try? FileManager.default.removeItem(atPath: f) } }
        let spec = try TaskSpec.load(BertKitTests.Fixture.path("tasks/mrpc-slice.json"))
        var h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path)
        // The model's whole length, which FineTunedModel uses too, so that both see the same tokens of a pair.
        (h[.maxLength], h[.batchSize], h[.evalBatchSize], h[.learningRate], h[.maxSteps], h[.evalSteps]) = (128, 8, 16, 1e-3, 6, 3)
        let task = try SequenceClassificationTask(TaskSetup(spec: spec, checkpoint: BertCheckpoint(directory: folder), hyperparameters: h))
        let encoding = task.tokenizer.encode("The cat sat.", pair: "A cat was sitting.")
        #expect(encoding.ids.first == 0 && encoding.ids.filter { $0 == 2 }.count == 3, "<s> A </s></s> B </s>")
        #expect(Set(encoding.typeIds) == [0])
        _ = try Trainer(task: task, hyperparameters: h, bestModelDirectory: nil).run()
        try task.export(to: export)

        let checkpoint = try BertCheckpoint(directory: export)
        let config = try checkpoint.rawConfig()
        #expect(config["architectures"] as? [String] == [checkpoint.config.family.architecture("BertForSequenceClassification")])
        #expect(config["model_type"] as? String == family)
        let names = try SafeTensorsFile(path: checkpoint.weightsPath).names
        #expect(names.contains("roberta.encoder.layer.1.output.LayerNorm.weight") && names.contains("classifier.dense.weight")
                && names.contains("classifier.out_proj.weight") && !names.contains { $0.contains("pooler") })
        #expect(FileManager.default.contentsEqual(atPath: export + "/tokenizer.json", andPath: folder + "/tokenizer.json"))

        // The export reloads bit for bit: the first dev pair's logits are the trained model's.
        let batch = SequenceClassificationTask.batch(task.evaluation, ArraySlice([0]), padId: task.tokenizer.padId)
        task.model.forward(batch)
        let trained = Array(UnsafeBufferPointer(start: task.model.logits, count: 2))
        let reloaded = SequenceClassifier(config: checkpoint.config, outputs: 2, context: BuildContext(maxBatch: 1, maxLength: 128))
        let report = try checkpoint.loadWeights(into: reloaded.parameters)
        #expect(report.initialised.isEmpty && report.ignored.isEmpty)
        reloaded.forward(batch)
        #expect(Array(UnsafeBufferPointer(start: reloaded.logits, count: 2)) == trained)
        // A program's FineTunedModel over the export, from the pair's text: the same logit difference, up to the
        // rounding of packed products (relative 1e-6 of the logits, as SequenceClassifierTests bounds it).
        #expect(task.evaluation[0].ids.count < 128, "the pair is not truncated")
        let pair = try spec.examples("dev")[0]
        let predicted = try FineTunedModel(folder: export).classify(pair.textA, pair: pair.textB)
        let difference = log(predicted.scores[1].score / predicted.scores[0].score)
        let scale = Double(max(abs(trained[0]), abs(trained[1]), 1))
        #expect(abs(difference - Double(trained[1] - trained[0])) < 2e-6 * scale)
    }

    /// Continued pre-training with masked LM alone on real text through the family's tokenizer: the pairs are the
    /// template's (`<s> A </s></s> B </s>`), the export is `<Family>ForMaskedLM` with `lm_head.*`, and fill-mask
    /// through FineTunedModel names the family's mask token. Asking for next-sentence prediction is refused.
    @Test(arguments: families)
    func continuesPreTrainingWithMaskedLMAlone(_ family: String) throws {
        let folder = try Self.modelFolder(family), export = folder + "-export"
        defer { for f in [folder, export] { try? FileManager.default.removeItem(atPath: f) } }
        let spec = try TaskSpec.load(BertKitTests.Fixture.path("tasks/pretrain-tiny.json"))
        var h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path)
        (h[.batchSize], h[.evalBatchSize], h[.learningRate], h[.maxSteps], h[.evalSteps]) = (8, 8, 1e-3, 4, 2)
        let checkpoint = try BertCheckpoint(directory: folder)
        #expect(throws: UsageError.self) { _ = try PreTrainingTask(TaskSetup(spec: spec, checkpoint: checkpoint, hyperparameters: h)) }
        h[.nextSentencePrediction] = false
        let task = try PreTrainingTask(TaskSetup(spec: spec, checkpoint: checkpoint, hyperparameters: h))
        let result = try Trainer(task: task, hyperparameters: h, bestModelDirectory: nil).run()
        #expect(result.steps == 4 && result.finalMetrics["mlm_loss"].map { $0.isFinite } == true)
        try task.export(to: export)
        let exported = try BertCheckpoint(directory: export)
        #expect(try exported.rawConfig()["architectures"] as? [String] == [exported.config.family.architecture("BertForMaskedLM")])
        let names = try SafeTensorsFile(path: exported.weightsPath).names
        #expect(names.contains("lm_head.dense.weight") && names.contains("lm_head.bias") && !names.contains { $0.contains("pooler") || $0.hasPrefix("cls.") })
        let fills = try FineTunedModel(folder: export).fillMask("The cat <mask> on the mat.")
        #expect(fills.count == 1 && fills[0].count == 5)
    }
}
