// Runs warm training steps of each task head, in each precision, on the tiny checkpoint and reports the heap
// allocations they made, in a process of its own so that nothing else allocates meanwhile. CLITests/AllocationTests
// runs it and reads one line per head and precision:
// "<head> <precision>: 5 warm steps: <n> allocations by the toolkit, <g> by the GEMM library, <m> parallel loops".
// oneDNN allocates the packing workspace of each GEMM call inside the call; that count is reported apart.
import AllocationCounter
import BertKit
import Foundation

let fixtures = CommandLine.arguments[1]
let golden = try SafeTensorsFile(path: fixtures + "/tiny-classifier.safetensors")
let checkpoint = try BertCheckpoint(directory: fixtures + "/tiny-bert")
let shape = try golden.entry("input_ids").shape
let attentionMask = try golden.integers("attention_mask")
let batch = EncoderBatch(batchSize: shape[0], sequenceLength: shape[1],
                         tokenIds: try golden.integers("input_ids").map(Int32.init),
                         tokenTypeIds: try golden.integers("token_type_ids").map(Int32.init),
                         attentionMask: attentionMask)

/// Runs one step (forward with dropout, loss, backward, AdamW) to warm up, then five more, counting allocations.
func measure(_ head: String, _ precision: Precision, parameters: ParameterStore, step: (UInt64) -> Void) {
    let optimizer = Optimizer(parameters: parameters, weightDecay: 0.01, maxGradNorm: 1, settings: .init())
    func fullStep(_ seed: UInt64) {
        parameters.zeroGradients()
        step(seed)
        optimizer.update(learningRate: 1e-3)
    }
    fullStep(0)
    let loopsBefore = Parallel.parallelLoops
    let before = allocation_count(), libraryBefore = gemm_library_allocation_count()
    for seed in 1..<6 { fullStep(UInt64(seed)) }
    let library = gemm_library_allocation_count() - libraryBefore
    let toolkit = allocation_count() - before - library
    print("\(head) \(precision.rawValue): 5 warm steps: \(toolkit) allocations by the toolkit, \(library) by the GEMM library, \(Parallel.parallelLoops - loopsBefore) parallel loops")
}

for precision in Precision.training {
    let classifier = SequenceClassifier(config: checkpoint.config, outputs: 3, context: BuildContext(for: batch, precision: precision))
    _ = try checkpoint.loadWeights(into: classifier.parameters, mayBeNew: SequenceClassifier.isHeadParameter)
    let labels: [Target] = try golden.integers("classification.labels").map { .label($0) }
    measure("sequence classification", precision, parameters: classifier.parameters) { seed in
        classifier.forward(batch, dropout: .training(seed: seed))
        _ = classifier.loss(labels)
        classifier.backward()
    }

    let tagger = TokenClassifier(config: checkpoint.config, labels: 5, context: BuildContext(for: batch, precision: precision))
    _ = try checkpoint.loadWeights(into: tagger.parameters, mayBeNew: TokenClassifier.isHeadParameter)
    let tags: [Int32] = attentionMask.enumerated().map { $1 == 0 ? TokenClassifier.ignored : Int32($0 % 5) }
    measure("token classification", precision, parameters: tagger.parameters) { seed in
        tagger.forward(batch, dropout: .training(seed: seed))
        _ = tagger.loss(tags)
        tagger.backward()
    }

    let reader = QuestionAnsweringModel(config: checkpoint.config, context: BuildContext(for: batch, precision: precision))
    _ = try checkpoint.loadWeights(into: reader.parameters, mayBeNew: QuestionAnsweringModel.isHeadParameter)
    let starts = (0..<batch.batchSize).map { $0 % batch.sequenceLength }
    let ends = starts.map { min($0 + 1, batch.sequenceLength - 1) }
    measure("span QA", precision, parameters: reader.parameters) { seed in
        reader.forward(batch, dropout: .training(seed: seed))
        _ = reader.loss(starts: starts, ends: ends)
        reader.backward()
    }

    // Every fourth real token masked (none a [CLS]), pairs alternately random.
    let masked = (0..<batch.tokenCount).filter { $0 % batch.sequenceLength != 0 && attentionMask[$0] == 1 && $0 % 4 == 1 }
    let maskedTokens = masked.map { batch.tokenIds[$0] }
    let isRandomNext = (0..<batch.batchSize).map { $0 % 2 == 1 }
    let pretrainer = PreTrainingModel(config: checkpoint.config, context: BuildContext(for: batch, precision: precision),
                                      maxPredictions: masked.count)
    _ = try checkpoint.loadWeights(into: pretrainer.parameters, mayBeNew: PreTrainingModel.isHeadParameter)
    measure("pre-training", precision, parameters: pretrainer.parameters) { seed in
        pretrainer.forward(batch, maskedPositions: masked, dropout: .training(seed: seed))
        _ = pretrainer.loss(maskedTokens: maskedTokens, isRandomNext: isRandomNext)
        pretrainer.backward()
    }
}

let probe = [Int](repeating: 0, count: CommandLine.arguments.count + 16)
let before = allocation_count()
let copy = probe + [1]
print("control allocation seen: \(allocation_count() > before && copy.count > probe.count)")
