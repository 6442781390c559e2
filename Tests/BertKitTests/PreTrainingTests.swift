import Foundation
import Testing
import BertKit

@Suite struct PreTrainingHeadTests {
    /// The masked-LM head (decoder tied to the word embeddings) and the NSP head against `BertForPreTraining`.
    @Test func headsLossAndGradientsMatchPyTorch() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-pretraining.safetensors"))
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let batch = try EncoderBatch(fixture: golden)
        let positions = try golden.integers("masked_positions")
        let model = PreTrainingModel(config: checkpoint.config, context: BuildContext(for: batch),
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

    /// The encoder's last layer computes the masked tokens and each `[CLS]` alone, and no layer the padding:
    /// the heads' logits, the loss and every gradient are a pass over every position's, with dropout on (the
    /// same masks) and off, in each training precision.
    @Test(arguments: Precision.training, [false, true])
    func theMaskedRowsAloneGiveTheFullPassesResults(_ precision: Precision, training: Bool) throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-pretraining.safetensors"))
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let batch = try EncoderBatch(fixture: golden)
        #expect(batch.lengths.contains { $0 < batch.sequenceLength }, "the fixture's batch has padding")
        let positions = try golden.integers("masked_positions")
        let model = PreTrainingModel(config: checkpoint.config, context: BuildContext(for: batch, precision: precision),
                                     maxPredictions: positions.count)
        for p in model.parameters.parameters {
            try golden.readFloats("weight." + Self.checkpointName(p.name), into: p.value)
        }
        let maskedTokens = try golden.integers("masked_tokens").map(Int32.init)
        let isRandomNext = try golden.integers("next_sentence_label").map { $0 == 1 }
        let dropout = training ? DropoutMode.training(seed: 3) : .evaluation
        let v = checkpoint.config.vocabSize

        func pass(everyRow: Bool) -> PassResults {
            model.forward(batch, maskedPositions: positions, dropout: dropout, everyRow: everyRow)
            let logits = Array(UnsafeBufferPointer(start: model.mlmLogits, count: positions.count * v))
                + Array(UnsafeBufferPointer(start: model.nspLogits, count: batch.batchSize * 2))
            let loss = model.loss(maskedTokens: maskedTokens, isRandomNext: isRandomNext)
            return PassResults(logits: logits, loss: loss.mlm + loss.nsp, parameters: model.parameters,
                               backward: model.backward)
        }
        let all = pass(everyRow: true)
        let masked = pass(everyRow: false)
        expectSameResults(masked, all, model.parameters, "\(precision) training \(training)")
        if training {
            model.forward(batch, maskedPositions: positions)
            let evaluation = Array(UnsafeBufferPointer(start: model.mlmLogits, count: positions.count * v))
            #expect(relativeError(evaluation, Array(masked.logits.prefix(positions.count * v))) > 1e-3, "dropout was on")
        }
    }

    static func checkpointName(_ name: String) -> String {
        PreTrainingModel.isHeadParameter(name) ? name : "bert." + name
    }
}

@Suite struct MaskingTests {
    static func tokenizer() throws -> Tokenizer {
        try Tokenizer(vocabulary: Vocabulary(path: Fixture.path("vocab-uncased.txt")), normalizer: BertNormalizer(lowercase: true))
    }

    /// Sentences of the bundled corpus, tokenised as pairs would be: `[CLS] A [SEP] B [SEP]`, padded.
    static func sequences(_ tokenizer: Tokenizer, padTo length: Int = 0) throws -> [[Int32]] {
        let corpus = try TextCorpus(path: Fixture.path("tasks/data/pretrain-tiny.txt"))
        let sentences = corpus.documents.flatMap(\.sentences).map { tokenizer.tokenize($0).map(\.id) }
        return sentences.indices.dropLast().map { i in
            let ids = [tokenizer.vocabulary.id("[CLS]")!] + sentences[i] + [tokenizer.vocabulary.id("[SEP]")!] + sentences[i + 1] + [tokenizer.vocabulary.id("[SEP]")!]
            return ids + [Int32](repeating: tokenizer.padId, count: max(0, length - ids.count))
        }
    }

    @Test func fifteenPercentChosenOfWhichEightyTenTen() throws {
        let tokenizer = try Self.tokenizer()
        let masker = try Masker(tokenizer: tokenizer)
        var random = SeededRandom(seed: 7)
        var candidates = 0, chosen = 0, masked = 0, replaced = 0, kept = 0
        for _ in 0..<12 {  // every sequence twelve times, with different draws
            for ids in try Self.sequences(tokenizer, padTo: 128) {
                let m = masker.mask(ids, random: &random)
                candidates += ids.filter { !masker.special.contains($0) }.count
                chosen += m.positions.count
                #expect(m.positions == m.positions.sorted() && Set(m.positions).count == m.positions.count)
                #expect(m.positions.count <= masker.maxPredictions)
                for (p, label) in zip(m.positions, m.labels) {
                    #expect(!masker.special.contains(ids[p]), "a special token ([CLS], [SEP], [PAD]) was chosen")
                    #expect(label == ids[p])
                    if m.ids[p] == tokenizer.maskId { masked += 1 } else if m.ids[p] == ids[p] { kept += 1 } else { replaced += 1 }
                }
                let untouched = Set(ids.indices).subtracting(m.positions)
                #expect(untouched.allSatisfy { m.ids[$0] == ids[$0] }, "only chosen positions change")
            }
        }
        // Each sequence chooses round(15 % of its candidates): the share is 15 % up to rounding.
        let share = Double(chosen) / Double(candidates)
        #expect(abs(share - 0.15) < 0.005, "chosen \(share)")
        // Of the chosen: 80 % [MASK], 10 % random, 10 % unchanged, each within 4 standard errors.
        for (count, p) in [(masked, 0.8), (replaced, 0.1), (kept, 0.1)] {
            let sigma = (p * (1 - p) / Double(chosen)).squareRoot()
            #expect(abs(Double(count) / Double(chosen) - p) < 4 * sigma, "\(count) of \(chosen), expected \(p)")
        }
        #expect(chosen > 10_000)
    }

    @Test func theCapLimitsPredictionsPerSequence() throws {
        let tokenizer = try Self.tokenizer()
        var masker = try Masker(tokenizer: tokenizer)
        masker.maxPredictions = 3
        var random = SeededRandom(seed: 1)
        for ids in try Self.sequences(tokenizer) {
            #expect(masker.mask(ids, random: &random).positions.count <= 3)
        }
    }

    @Test func wholeWordMaskingNeverSplitsAWord() throws {
        let tokenizer = try Self.tokenizer()
        var masker = try Masker(tokenizer: tokenizer)
        masker.wholeWord = true
        var random = SeededRandom(seed: 3)
        var wordsWithPieces = 0
        for ids in try Self.sequences(tokenizer) {
            let m = masker.mask(ids, random: &random)
            let chosen = Set(m.positions)
            // A word: a piece that does not continue one, and the `##` pieces right after it.
            var start = 0
            while start < ids.count {
                var end = start + 1
                while end < ids.count && masker.continuesWord[Int(ids[end])] && !masker.special.contains(ids[end]) { end += 1 }
                let word = start..<end
                if word.count > 1 && word.contains(where: chosen.contains) {
                    wordsWithPieces += 1
                    #expect(word.allSatisfy(chosen.contains), "word \(word) partly masked")
                }
                start = end
            }
        }
        #expect(wordsWithPieces > 20, "the corpus has words of several pieces to test on")
    }

    @Test func theSameSeedGivesTheSameExamples() throws {
        let tokenizer = try Self.tokenizer()
        let masker = try Masker(tokenizer: tokenizer)
        let ids = try Self.sequences(tokenizer)[0]
        var a = SeededRandom(seed: 5, stream: 9), b = SeededRandom(seed: 5, stream: 9), c = SeededRandom(seed: 5, stream: 10)
        #expect(masker.mask(ids, random: &a) == masker.mask(ids, random: &b))
        #expect(masker.mask(ids, random: &a) != masker.mask(ids, random: &c))

        let documents = try PairTests.documents(tokenizer)
        let builder = SegmentPairBuilder(maxLength: 64, template: tokenizer.postProcessor)
        #expect(builder.pairs(from: documents, seed: 11) == builder.pairs(from: documents, seed: 11))
        #expect(builder.pairs(from: documents, seed: 11) != builder.pairs(from: documents, seed: 12))
    }
}

@Suite struct PairTests {
    static func documents(_ tokenizer: Tokenizer) throws -> [[[Int32]]] {
        try TextCorpus(path: Fixture.path("tasks/data/pretrain-tiny.txt")).documents.map { d in
            d.sentences.map { tokenizer.tokenize($0).map(\.id) }
        }
    }

    @Test func pairsAreWellFormedAndIsNextPairsContinueTheirDocument() throws {
        let tokenizer = try MaskingTests.tokenizer()
        let documents = try Self.documents(tokenizer)
        let texts = documents.map { Array($0.joined()) }
        let builder = SegmentPairBuilder(maxLength: 64, template: tokenizer.postProcessor)
        let pairs = builder.pairs(from: documents, seed: 2)
        #expect(pairs.count > 50)
        for pair in pairs {
            #expect(pair.ids.count <= 64 && pair.ids.count == pair.typeIds.count)
            #expect(pair.ids.first == tokenizer.vocabulary.id("[CLS]")! && pair.ids.last == tokenizer.vocabulary.id("[SEP]")!)
            let sep = pair.ids.firstIndex(of: tokenizer.vocabulary.id("[SEP]")!)!
            #expect(pair.typeIds[..<(sep + 1)].allSatisfy { $0 == 0 } && pair.typeIds[(sep + 1)...].allSatisfy { $0 == 1 })
            let a = Array(pair.ids[1..<sep]), b = Array(pair.ids[(sep + 1)..<(pair.ids.count - 1)])
            #expect(!a.isEmpty && !b.isEmpty)
            if !pair.isRandomNext {
                // A and B are stretches of one document, B after A (trimming may cut either at both ends).
                #expect(texts.contains { text in
                    Self.occurrences(of: a, in: text).contains { i in
                        Self.occurrences(of: b, in: text).contains { $0 >= i + a.count }
                    }
                }, "IsNext B does not follow A in its document")
            }
        }
    }

    @Test func nextSentenceLabelsAreBalanced() throws {
        let tokenizer = try MaskingTests.tokenizer()
        let documents = try Self.documents(tokenizer)
        var notNext = 0, total = 0
        for seed: UInt64 in 0..<20 {
            let pairs = SegmentPairBuilder(maxLength: 64, template: tokenizer.postProcessor)
                .pairs(from: documents, seed: seed)
            notNext += pairs.filter(\.isRandomNext).count
            total += pairs.count
        }
        let sigma = (0.25 / Double(total)).squareRoot()
        #expect(abs(Double(notNext) / Double(total) - 0.5) < 4 * sigma, "\(notNext) NotNext of \(total)")
    }

    @Test func withoutNextSentencePredictionEveryPairContinues() throws {
        let tokenizer = try MaskingTests.tokenizer()
        var builder = SegmentPairBuilder(maxLength: 64, template: tokenizer.postProcessor)
        builder.nextSentencePrediction = false
        #expect(builder.pairs(from: try Self.documents(tokenizer), seed: 4).allSatisfy { !$0.isRandomNext })
    }

    static func occurrences(of needle: [Int32], in haystack: [Int32]) -> [Int] {
        guard needle.count <= haystack.count else { return [] }
        return (0...(haystack.count - needle.count)).filter { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}

@Suite struct CorpusTests {
    @Test func badLinesAndEmptyDocumentsAreReportedNotFatal() throws {
        let path = NSTemporaryDirectory() + "bertkit-corpus-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var bytes = Array("First sentence.\r\nSecond one.\n\n".utf8)
        bytes += [0xC3, 0x28, 0x0A]           // line 4: not UTF-8
        bytes += Array("\n  \nThird document.\nEnd.".utf8)  // no final newline
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let corpus = try TextCorpus(path: path)
        #expect(corpus.documents.map(\.sentences) == [["First sentence.", "Second one."], ["Third document.", "End."]])
        #expect(corpus.documents.map(\.line) == [1, 7])
        #expect(corpus.problems.map(\.description) == [
            "\(path):4: not valid UTF-8; line skipped", "\(path):4: document has no readable text; skipped",
        ])
        #expect(throws: DataError.self) { try TextCorpus(path: path + ".missing") }
    }
}

@Suite struct PreTrainingTaskTests {
    static func task(data: DataSources = DataSources(), _ configure: (inout Hyperparameters) -> Void = { _ in }) throws -> PreTrainingTask {
        try Fixture.task(PreTrainingTask.self, "tasks/pretrain-tiny.json", data: data) {
            $0[.maxLength] = 40
            $0[.batchSize] = 8
            $0[.evalBatchSize] = 16
            $0[.seed] = 3
            $0[.maxPredictions] = 6
            configure(&$0)
        }
    }

    /// Trains the tiny model on the tiny corpus: the held-out masked-LM loss falls; the export is a
    /// BertForPreTraining folder whose heads load back unchanged, and from which a classifier fine-tunes.
    @Test func heldOutLossFallsAndTheExportLoadsBack() throws {
        let directory = NSTemporaryDirectory() + "bertkit-pretrain-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spec = try TaskSpec.load(Fixture.path("tasks/pretrain-tiny.json"))
        let task = try Self.task()
        #expect(task.loadReport.initialised.sorted() == PreTrainingModel.parameters(task.checkpoint.config).map(\.name)
            .filter(PreTrainingModel.isHeadParameter).sorted(), "the tiny checkpoint has no pre-training heads")
        let before = try task.evaluate()
        #expect(Set(before.keys) == ["mlm_loss", "mlm_accuracy", "perplexity", "nsp_loss", "nsp_accuracy"])
        var h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path)
        h[.batchSize] = 8
        h[.learningRate] = 2e-3
        h[.maxSteps] = 40
        h[.evalSteps] = 40
        let result = try Trainer(task: task, hyperparameters: h, bestModelDirectory: directory).run()
        let after = result.finalMetrics
        #expect(after["mlm_loss"]! < before["mlm_loss"]! - 0.5, "held-out masked-LM loss \(before["mlm_loss"]!) -> \(after["mlm_loss"]!)")
        #expect(abs(after["perplexity"]! - exp(after["mlm_loss"]!)) < 1e-6 * after["perplexity"]!)

        let exported = try BertCheckpoint(directory: directory)
        #expect(try exported.rawConfig()["architectures"] as? [String] == ["BertForPreTraining"])
        let reloaded = PreTrainingModel(config: exported.config, context: BuildContext(maxBatch: 1, maxLength: 8), maxPredictions: 1)
        let report = try exported.loadWeights(into: reloaded.parameters, mayBeNew: { _ in false })
        #expect(report.initialised.isEmpty && report.ignored.isEmpty)
        for p in task.parameters.parameters {
            #expect(Array(reloaded.parameters[p.name].values) == Array(p.values), "\(p.name) differs after export and load")
        }
        let classifier = SequenceClassifier(config: exported.config, outputs: 2, context: BuildContext(maxBatch: 1, maxLength: 8))
        let fineTuning = try exported.loadWeights(into: classifier.parameters, mayBeNew: SequenceClassifier.isHeadParameter)
        #expect(fineTuning.initialised == ["classifier.weight", "classifier.bias"])
        #expect(Set(fineTuning.ignored) == Set(report.loaded.filter(PreTrainingModel.isHeadParameter)))
    }

    @Test func maskedLMAloneFromATextFileWithItsLastDocumentsHeldOut() throws {
        let task = try Self.task(data: DataSources(textFile: Fixture.path("tasks/data/pretrain-tiny.txt"))) {
            $0[.nextSentencePrediction] = false
        }
        #expect(task.dataSummary.contains("from 23 documents") && task.dataSummary.hasSuffix("held-out pairs from 1"))
        #expect(task.evaluation.count > 0 && task.training.allSatisfy { !$0.isRandomNext })
        #expect(Set(try task.evaluate().keys) == ["mlm_loss", "mlm_accuracy", "perplexity"])
        let nsp = task.parameters["cls.seq_relationship.weight"]
        let loss = task.trainStep(BatchShare(whole: [0, 1, 2, 3][...]), dropout: .training(seed: 1), gradientScale: 1)
        #expect(loss.isFinite && loss > 0)
        #expect(nsp.gradients.allSatisfy { $0 == 0 }, "no NSP gradient when training masked LM alone")
    }

    @Test func dynamicMaskingDrawsNewMasksEachRoundAndStaticKeepsOne() throws {
        for dynamic in [true, false] {
            let task = try Self.task { $0[.dynamicMasking] = dynamic }
            let first = task.trainStep(BatchShare(whole: [0, 1][...]), dropout: .evaluation, gradientScale: 1)
            let second = task.trainStep(BatchShare(whole: [0, 1][...]), dropout: .evaluation, gradientScale: 1)
            // Same weights, no dropout: only a new mask can change the loss.
            #expect((first != second) == dynamic, "dynamic \(dynamic): \(first) then \(second)")
        }
    }
}
