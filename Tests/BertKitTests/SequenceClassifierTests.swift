import Foundation
import Testing
import BertKit

/// The sequence classification head against transformers' `BertForSequenceClassification`.
@Suite struct SequenceClassifierTests {
    @Test(arguments: [("classification", 3), ("regression", 1)])
    func lossAndGradientsMatchPyTorch(kind: String, outputs: Int) throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-classifier.safetensors"))
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let batch = try EncoderBatch(fixture: golden)
        let model = SequenceClassifier(config: checkpoint.config, outputs: outputs, context: BuildContext(for: batch))
        // The fixture's own initial weights, head included (transformers initialised the head at random).
        for p in model.parameters.parameters { try golden.readFloats("\(kind).weight." + fixtureName(p.name), into: p.value) }

        model.forward(batch)
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: batch.batchSize * outputs))
        #expect(relativeError(logits, try golden.floats("\(kind).logits")) < 1e-5)

        let targets: [Target] = outputs == 1
            ? try golden.floats("\(kind).labels").map { .value($0) }
            : try golden.integers("\(kind).labels").map { .label($0) }
        let loss = model.loss(targets)
        let expected = Double(try golden.floats("\(kind).loss")[0])
        #expect(abs(loss - expected) < 1e-5 * max(1, abs(expected)))

        model.parameters.zeroGradients()
        model.backward()
        for p in model.parameters.parameters {
            let name = fixtureName(p.name)
            let error = try gradientError(p, golden, "\(kind).grad.\(name)", exactlyZero: p.name.hasSuffix("attention.self.key.bias"))
            #expect(error < 1e-4, "\(kind): gradient of \(p.name), relative error \(error)")
        }
    }

    /// With the weights fixed for inference (packed products), the logits are still transformers', and the
    /// packed copies go when the scope ends, leaving the gradients at zero.
    @Test func logitsWithFixedWeightsMatchPyTorch() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-classifier.safetensors"))
        let (model, batch) = try fixtureClassifier(golden, prefix: "classification.", precision: .float32)
        let count = batch.batchSize * 3
        model.forward(batch)
        let unpacked = Array(UnsafeBufferPointer(start: model.logits, count: count))
        let packed = model.parameters.withFixedWeights {
            #expect(model.parameters.weightsAreFixed)
            return model.parameters.withFixedWeights {  // nested: packed once, released by the outer scope
                model.forward(batch)
                return Array(UnsafeBufferPointer(start: model.logits, count: count))
            }
        }
        #expect(!model.parameters.weightsAreFixed)
        #expect(relativeError(packed, try golden.floats("classification.logits")) < 1e-5)
        #expect(relativeError(packed, unpacked) < 1e-6)
        // The copies lived in the gradient buffer, which holds zeros again; a second scope packs anew.
        #expect(!model.parameters.gradients.contains { $0 != 0 })
        let again = model.parameters.withFixedWeights {
            model.forward(batch)
            return Array(UnsafeBufferPointer(start: model.logits, count: count))
        }
        #expect(again == packed)
    }
}

/// The fixture's name of a classifier parameter: transformers prefixes the encoder's with `bert.`.
func fixtureName(_ name: String) -> String { name.hasPrefix("classifier.") ? name : "bert." + name }

/// A 3-label classifier in `precision` holding a fixture's weights (`<prefix>weight.<name>`), and its batch.
func fixtureClassifier(_ golden: SafeTensorsFile, prefix: String, precision: Precision) throws -> (SequenceClassifier, EncoderBatch) {
    let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
    let batch = try EncoderBatch(fixture: golden)
    let model = SequenceClassifier(config: checkpoint.config, outputs: 3, context: BuildContext(for: batch, precision: precision))
    for p in model.parameters.parameters { try golden.readFloats(prefix + "weight." + fixtureName(p.name), into: p.value) }
    return (model, batch)
}

/// The classifier runs the encoder's last layer on the `[CLS]` rows only; the logits, the loss and every
/// gradient are those of the full last layer, with dropout on (the same masks) and off. (The PyTorch
/// comparisons above and below run the `[CLS]`-only path too.)
@Suite struct FirstTokenLastLayerTests {
    @Test(arguments: Precision.training, [false, true])
    func givesTheFullLayersLogitsLossAndGradients(_ precision: Precision, training: Bool) throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-classifier.safetensors"))
        let (model, batch) = try fixtureClassifier(golden, prefix: "classification.", precision: precision)
        #expect(batch.lengths.contains { $0 < batch.sequenceLength }, "the batch has padding")
        let targets: [Target] = try golden.integers("classification.labels").map { .label($0) }
        let dropout = training ? DropoutMode.training(seed: 77) : .evaluation

        func pass(firstTokensOnly: Bool) -> PassResults {
            model.lastLayerFirstTokensOnly = firstTokensOnly
            model.forward(batch, dropout: dropout)
            let logits = Array(UnsafeBufferPointer(start: model.logits, count: batch.batchSize * 3))
            return PassResults(logits: logits, loss: model.loss(targets), parameters: model.parameters, backward: model.backward)
        }
        let full = pass(firstTokensOnly: false)
        let first = pass(firstTokensOnly: true)
        expectSameResults(first, full, model.parameters, "\(precision) training \(training)")
        if training {
            model.lastLayerFirstTokensOnly = true
            model.forward(batch)
            let evaluation = Array(UnsafeBufferPointer(start: model.logits, count: batch.batchSize * 3))
            #expect(relativeError(evaluation, full.logits) > 1e-3, "dropout was on")
        }
    }
}

/// `--precision bf16` against the same model in float64 whose every matmul (each `nn.Linear` and BERT's eager
/// attention) multiplies bf16-rounded operands (scripts/fixtures/make_fixtures.py, `BF16MatMul`): the rounding, not just
/// the speed, is the reference's.
@Suite struct MixedPrecisionTests {
    /// Runs the fixture's batch through the classifier in `precision`; returns logits, loss and gradients.
    func run(_ precision: Precision, _ golden: SafeTensorsFile) throws -> (logits: [Float], loss: Double, model: SequenceClassifier) {
        let (model, batch) = try fixtureClassifier(golden, prefix: "", precision: precision)
        model.forward(batch)
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: batch.batchSize * 3))
        let loss = model.loss(try golden.integers("labels").map { .label($0) })
        model.parameters.zeroGradients()
        model.backward()
        return (logits, loss, model)
    }

    @Test func bf16LossAndGradientsMatchPyTorchWithRoundedGemmInputs() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-classifier-bf16.safetensors"))
        let (logits, loss, model) = try run(.bfloat16, golden)
        // The fp32 tolerances: the reference rounds float64 values and the toolkit fp32 ones, so an element within
        // fp32 rounding of a bf16 tie could round the other way (one bf16 step apart), but none does here.
        #expect(relativeError(logits, try golden.floats("logits")) < 1e-5)
        let expected = Double(try golden.floats("loss")[0])
        #expect(abs(loss - expected) < 1e-5 * max(1, abs(expected)))
        for p in model.parameters.parameters {
            let name = fixtureName(p.name)
            // Every gradient against its own reference value, the key biases' too: in fp32 theirs is exactly zero
            // (softmax's gradient rows sum to zero), but rounding dS to bf16 leaves a residual, about 1e-3 of
            // the key weights' gradient, which both sides compute alike.
            let error = try gradientError(p, golden, "grad.\(name)")
            #expect(error < 1e-4, "gradient of \(p.name), relative error \(error)")
        }
    }

    @Test func fp32IsToldApartFromTheBF16Reference() throws {
        // The tolerances above separate the two precisions: fp32 misses the bf16 reference by far more.
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-classifier-bf16.safetensors"))
        let (logits, _, model) = try run(.float32, golden)
        #expect(relativeError(logits, try golden.floats("logits")) > 1e-3)
        let worst = try model.parameters.parameters.filter { !$0.name.hasSuffix("attention.self.key.bias") }.map {
            try gradientError($0, golden, "grad." + fixtureName($0.name))
        }.max()!
        #expect(worst > 1e-3)
    }
}

@Suite struct MetricsTests {
    struct Fixtures: Decodable {
        struct Classification: Decodable { let gold: [Int]; let predicted: [Int]; let accuracy: Double; let f1: Double?; let matthews: Double }
        struct Correlation: Decodable { let x: [Double]; let y: [Double]; let pearson: Double; let spearman: Double }
        let classification: [Classification]
        let correlation: [Correlation]
    }

    let fixtures = try! JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: URL(fileURLWithPath: Fixture.path("metrics.json"))))

    @Test func classificationMetricsEqualScikitLearn() {
        for c in fixtures.classification {
            #expect(abs(Metrics.accuracy(c.predicted, c.gold) - c.accuracy) < 1e-12)
            #expect(abs(Metrics.matthewsCorrelation(c.predicted, c.gold) - c.matthews) < 1e-12)
            if let f1 = c.f1 { #expect(abs(Metrics.f1(c.predicted, c.gold) - f1) < 1e-12) }
        }
    }

    @Test func correlationsEqualSciPy() {
        for c in fixtures.correlation {
            #expect(abs(Metrics.pearson(c.x, c.y) - c.pearson) < 1e-12)
            #expect(abs(Metrics.spearman(c.x, c.y) - c.spearman) < 1e-12)
        }
    }

    @Test func computeByName() {
        let m = Metrics.compute(["accuracy", "f1"], predicted: [.label(1), .label(0), .label(1)], gold: [.label(1), .label(1), .label(1)])
        #expect(m["accuracy"]! == 2.0 / 3 && m["f1"]! == 0.8)
    }
}

@Suite struct OptimizerTests {
    @Test(arguments: [0.0, 0.01])
    func adamWMatchesTorch(decay: Double) throws {
        let golden = try SafeTensorsFile(path: Fixture.path("adamw.safetensors"))
        let key = "decay\(decay == 0 ? "0.0" : "0.01")"
        var parameters = try golden.floats("\(key).initial")
        var m = [Float](repeating: 0, count: parameters.count), v = m
        for step in 0..<5 {
            var gradient = try golden.floats("\(key).grad\(step)")
            AdamW.update(parameters: &parameters, gradients: &gradient, firstMoment: &m, secondMoment: &v,
                         count: parameters.count, step: step + 1, learningRate: 1e-2, weightDecay: Float(decay), settings: .init())
            #expect(relativeError(parameters, try golden.floats("\(key).after\(step)")) < 1e-6, "step \(step + 1)")
            #expect(gradient.allSatisfy { $0 == 0 }, "the update consumes the gradients")
        }
    }

    @Test func clipsTheGlobalNormAndSkipsDecayOnBiasesAndLayerNorm() {
        let store = ParameterStore([.init("dense.weight", [3]), .init("dense.bias", [1]), .init("x.LayerNorm.weight", [1])])
        #expect(store["dense.weight"].decays && !store["dense.bias"].decays && !store["x.LayerNorm.weight"].decays)
        let initial: [Float] = [0.5, -1, 2, 0.25, 1]
        _ = store.values.update(fromContentsOf: initial)
        let optimizer = Optimizer(parameters: store, weightDecay: 0.5, maxGradNorm: 1, settings: .init())
        // Two steps, the first clipped (norm 5 -> 1) and the second not (norm 0.5): Adam is nearly invariant to
        // the scale of a single step's gradient, not to the ratio of two steps'.
        let steps: [[Float]] = [[3, 0, 0, 4, 0], [0.3, 0, 0, 0, -0.4]]
        var norms: [Float] = []
        for gradients in steps {
            _ = store.gradients.update(fromContentsOf: gradients)
            norms.append(optimizer.update(learningRate: 0.1))
            #expect(store.gradients.allSatisfy { $0 == 0 }, "the update consumes the gradients")
        }
        #expect(abs(norms[0] - 5) < 1e-6 && abs(norms[1] - 0.5) < 1e-6)

        // The same two steps by hand, decay on the weight only, with the gradients clipped or as they are.
        func byHand(clipping: Bool) -> [Float] {
            var parameters = initial, m = [Float](repeating: 0, count: 5), v = m
            for (step, gradients) in steps.enumerated() {
                let norm = gradients.reduce(0) { $0 + $1 * $1 }.squareRoot()
                var g = gradients.map { clipping ? $0 * min(1, 1 / (norm + 1e-6)) : $0 }
                for (range, decay) in [(0..<3, Float(0.5)), (3..<5, 0)] {
                    parameters.withUnsafeMutableBufferPointer { p in
                        g.withUnsafeMutableBufferPointer { g in
                            m.withUnsafeMutableBufferPointer { m in
                                v.withUnsafeMutableBufferPointer { v in
                                    let o = range.lowerBound
                                    AdamW.update(parameters: p.baseAddress! + o, gradients: g.baseAddress! + o,
                                                 firstMoment: m.baseAddress! + o, secondMoment: v.baseAddress! + o,
                                                 count: range.count, step: step + 1, learningRate: 0.1,
                                                 weightDecay: decay, settings: .init())
                                }
                            }
                        }
                    }
                }
            }
            return parameters
        }
        #expect(Array(store.values) == byHand(clipping: true))
        #expect(relativeError(byHand(clipping: true), byHand(clipping: false)) > 1e-3, "clipping changes the result")
    }

    @Test func embeddingTableGradientsAreClearedByGivingPagesBack() {
        // A table between two ordinary parameters, neither end on a page boundary: clearing it zeroes exactly
        // its span, the optimizer's update gives the same result either way, and its written pages leave memory.
        let rows = 3000, width = 384
        let store = ParameterStore([.init("a.weight", [7]), .init("embeddings.word_embeddings.weight", [rows, width]),
                                    .init("b.bias", [5])])
        let table = store["embeddings.word_embeddings.weight"]
        #expect(table.isLookupTable && !store["a.weight"].isLookupTable && !store["b.bias"].isLookupTable)
        /// Pages of `p`'s gradient that hold memory of their own: present and mapped by this process alone, as
        /// /proc/self/pagemap tells (the kernel's shared zero page, which the clearing maps, is present but shared).
        func resident(_ p: Parameter) -> Int {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let first = Int(UInt(bitPattern: p.gradient) / UInt(page)), last = Int((UInt(bitPattern: p.gradient + p.count) - 1) / UInt(page))
            guard let file = FileHandle(forReadingAtPath: "/proc/self/pagemap") else { return -1 }
            defer { try? file.close() }
            try? file.seek(toOffset: UInt64(first * 8))
            let data = (try? file.read(upToCount: (last - first + 1) * 8)) ?? Data()
            let (present, exclusive): (UInt64, UInt64) = (1 << 63, 1 << 56)
            return stride(from: 0, to: data.count, by: 8).filter { offset in
                let entry = data[data.startIndex + offset ..< data.startIndex + offset + 8].enumerated()
                    .reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                return entry & present != 0 && entry & exclusive != 0
            }.count
        }
        store.gradients.update(repeating: 1)
        #expect(resident(table) > rows * width * 4 / Int(sysconf(Int32(_SC_PAGESIZE))) - 1)
        store.clearGradient(table)
        #expect(resident(table) <= 2, "only the partial pages at the ends stay")
        #expect(table.gradients.allSatisfy { $0 == 0 })
        #expect(store["a.weight"].gradients.allSatisfy { $0 == 1 } && store["b.bias"].gradients.allSatisfy { $0 == 1 })
        // Only pages holding something other than +0 are given back: a lone tiny value, and a −0, are found and
        // cleared; the clean pages around them are left alone.
        table.gradient[1234] = 1e-30
        table.gradient[rows * width / 2] = -0.0
        store.clearGradient(table)
        #expect(table.gradients.allSatisfy { $0.bitPattern == 0 })
        #expect(resident(table) <= 2)

        // An update with two rows of the table touched, against plain AdamW over the same numbers.
        var random = SeededRandom(seed: 9)
        for i in 0..<store.count { store.values[i] = random.next() }
        let initial = Array(store.values)
        store.zeroGradients()
        var gradients = [Float](repeating: 0, count: store.count)
        for i in 0..<7 { gradients[i] = random.next() }
        for row in [5, 2000] { for c in 0..<width { gradients[7 + row * width + c] = random.next() } }
        for (i, g) in gradients.enumerated() where g != 0 { store.gradients[i] = g }
        let optimizer = Optimizer(parameters: store, weightDecay: 0.01, maxGradNorm: 1000, settings: .init())
        optimizer.update(learningRate: 0.01)
        #expect(resident(table) <= 2)
        #expect(store.gradients.allSatisfy { $0 == 0 }, "the update leaves every gradient at zero")
        var expected = initial, m = [Float](repeating: 0, count: store.count), v = m
        AdamW.update(parameters: &expected, gradients: &gradients, firstMoment: &m, secondMoment: &v,
                     count: 7 + rows * width, step: 1, learningRate: 0.01, weightDecay: 0.01, settings: .init())
        #expect(Array(store.values[0..<(7 + rows * width)]) == Array(expected[0..<(7 + rows * width)]))
    }

    @Test func linearWarmupThenDecay() {
        let schedule = LearningRateSchedule(peak: 1, warmupSteps: 10, totalSteps: 110)
        #expect(schedule.rate(at: 0) == 0)
        #expect(schedule.rate(at: 5) == 0.5)
        #expect(schedule.rate(at: 10) == 1)
        #expect(schedule.rate(at: 60) == 0.5)
        #expect(schedule.rate(at: 110) == 0)
    }
}

@Suite struct BatchesTests {
    @Test func everyExampleOnceSeededAndGroupedByLength() {
        var generator = SeededRandom(seed: 3)
        let lengths = (0..<1000).map { _ in 5 + Int(generator.nextBits() % 120) }
        let a = Batches.epoch(lengths: lengths, batchSize: 16, seed: 1, epoch: 0, groupByLength: true)
        #expect(a.flatMap { $0 }.sorted() == Array(0..<1000))
        #expect(a.map(Array.init) == Batches.epoch(lengths: lengths, batchSize: 16, seed: 1, epoch: 0, groupByLength: true).map(Array.init))
        #expect(a.map(Array.init) != Batches.epoch(lengths: lengths, batchSize: 16, seed: 1, epoch: 1, groupByLength: true).map(Array.init))
        // Grouping wastes less on padding than a plain shuffle.
        func padding(_ batches: [ArraySlice<Int>]) -> Int {
            batches.reduce(0) { total, batch in
                let batchLengths = batch.map { lengths[$0] }
                return total + batch.count * batchLengths.max()! - batchLengths.reduce(0, +)
            }
        }
        #expect(padding(a) * 4 < padding(Batches.epoch(lengths: lengths, batchSize: 16, seed: 1, epoch: 0, groupByLength: false)))
    }
}

/// int8 prediction against PyTorch running the same quantisation (Fixtures/tiny-int8.safetensors): quantisation
/// decisions that sit on a rounding boundary can fall either way when the fp32 activations differ in their last
/// bits (different summation orders), which moves a logit by about one quantisation step; 1e-3 of the logits'
/// scale allows a few such steps and no systematic error.
@Suite struct Int8ClassifierTests {
    @Test func logitsEqualPyTorchRunningTheSameQuantisation() throws {
        let golden = try SafeTensorsFile(path: Fixture.path("tiny-classifier.safetensors"))
        let reference = try SafeTensorsFile(path: Fixture.path("tiny-int8.safetensors"))
        let (model, batch) = try fixtureClassifier(golden, prefix: "classification.", precision: .int8)
        model.forward(batch)
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: batch.batchSize * 3))
        let expected = try reference.floats("logits.\(Int8Gemm.weightLimit)")
        #expect(relativeError(logits, expected) < 1e-3, "int8 logits \(logits) against \(expected)")
        let fp32 = try golden.floats("classification.logits")
        #expect(relativeError(logits, fp32) > 1e-6, "the products really ran in int8")
        #expect(relativeError(logits, fp32) < 0.05, "and stay close to fp32")
    }
}
