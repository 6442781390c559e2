// Runs warm training steps of the tiny classifier and reports the heap allocations they made, in a process
// of its own so that nothing else allocates meanwhile. CLITests/AllocationTests runs it.
import AllocationCounter
import BertKit
import Foundation

let fixtures = CommandLine.arguments[1]
let golden = try SafeTensorsFile(path: fixtures + "/tiny-classifier.safetensors")
let checkpoint = try BertCheckpoint(directory: fixtures + "/tiny-bert")
let shape = try golden.entry("input_ids").shape
let batch = EncoderBatch(batchSize: shape[0], sequenceLength: shape[1],
                         tokenIds: try golden.integers("input_ids").map(Int32.init),
                         tokenTypeIds: try golden.integers("token_type_ids").map(Int32.init),
                         attentionMask: try golden.integers("attention_mask"))
let model = SequenceClassifier(config: checkpoint.config, outputs: 3, maxBatch: batch.batchSize, maxLength: batch.sequenceLength)
_ = try checkpoint.loadWeights(into: model.parameters, mayBeNew: SequenceClassifier.isHeadParameter)
let optimizer = Optimizer(parameters: model.parameters, weightDecay: 0.01, maxGradNorm: 1, settings: .init())
let targets: [Target] = try golden.integers("classification.labels").map { .label($0) }

/// One training step: forward with dropout, loss, backward, AdamW update.
@MainActor func step(_ seed: UInt64) {
    model.parameters.zeroGradients()
    model.forward(batch, dropout: .training(seed: seed))
    _ = model.loss(targets)
    model.backward()
    optimizer.update(learningRate: 1e-3)
}

step(0)
let loopsBefore = Parallel.parallelLoops
let before = allocation_count()
for seed in 1..<6 { step(UInt64(seed)) }
let during = allocation_count() - before
let loops = Parallel.parallelLoops - loopsBefore
let probe = [Int](repeating: 0, count: CommandLine.arguments.count + 16)
let control = allocation_count() - before - during
print("5 warm steps: \(during) allocations, \(loops) parallel loops; control allocation seen: \(control > 0 && probe.count > 0)")
