import BertKit
import Foundation

/// Whole training steps of a sequence classifier (the default encoder, two labels) at a fixed batch and several
/// sequence lengths, every sequence full: forward, loss and backward, and AdamW's update, timed apart. Tokens
/// per second should not fall as sequences get shorter (attention gets cheaper); where it does, something per
/// step or per kernel call costs more than the work. `scripts/bench/profile_steps` adds a profile per kernel.
struct StepCost {
    let model: String
    let batch: Int
    let lengths: [Int]
    let seconds: Double
    let output: String

    func run() throws {
        let config = try BertCheckpoint(directory: model).config
        var lines = ["# Training steps by sequence length: \((model as NSString).lastPathComponent), batch \(batch)", "",
                     "machine: \(machineDescription()), \(Parallel.workers) threads; \(Date()); medians over \(Int(seconds)) s per length", "",
                     "| length | step ms | forward + backward ms | AdamW ms | tokens/s | sequences/s |", "|---:|---:|---:|---:|---:|---:|"]
        for length in lengths {
            let classifier = SequenceClassifier(config: config, outputs: 2, context: BuildContext(maxBatch: batch, maxLength: length))
            _ = try BertCheckpoint(directory: model).loadWeights(into: classifier.parameters, mayBeNew: SequenceClassifier.isHeadParameter, seed: 1)
            let optimizer = Optimizer(parameters: classifier.parameters, weightDecay: 0.01, maxGradNorm: 1, settings: .init())
            var random = SeededRandom(seed: 0)
            let ids = (0..<(batch * length)).map { _ in Int32(1000 + random.nextBits() % UInt64(config.vocabSize - 1000)) }
            let input = EncoderBatch(batchSize: batch, sequenceLength: length, tokenIds: ids,
                                     tokenTypeIds: [Int32](repeating: 0, count: ids.count), lengths: [Int](repeating: length, count: batch))
            let targets = (0..<batch).map { Target.label($0 % 2) }
            var step: UInt64 = 0
            var passes: [Double] = [], updates: [Double] = []
            let start = Date()
            while Date().timeIntervalSince(start) < seconds || passes.count < 5 {
                step += 1
                let t0 = Date()
                classifier.forward(input, dropout: .training(seed: step))
                _ = classifier.loss(targets)
                classifier.backward()
                let t1 = Date()
                optimizer.update(learningRate: 1e-5)
                let t2 = Date()
                if step > 2 {  // two warm-up steps
                    passes.append(t1.timeIntervalSince(t0))
                    updates.append(t2.timeIntervalSince(t1))
                }
            }
            let pass = median(passes), update = median(updates), total = pass + update
            lines.append(String(format: "| %d | %.1f | %.1f | %.1f | %.0f | %.1f |", length, total * 1000, pass * 1000, update * 1000,
                                Double(batch * length) / total, Double(batch) / total))
        }
        let table = lines.joined(separator: "\n") + "\n"
        print(table)
        try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(Data(table.utf8), to: output)
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
