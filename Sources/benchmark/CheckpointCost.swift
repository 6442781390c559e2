import BertKit
import Foundation

/// The cost of a training checkpoint (`TrainingCheckpoint`): seconds to write one (parameters, AdamW's two
/// moments, trainer state; synced, then renamed) and to read it back, and its size, for the default encoder and
/// the BERT-base shape with a classification head, in the folder where runs write theirs.
struct CheckpointCost {
    let model: String
    let output: String
    let repeats = 5

    func run() throws {
        var lines = ["# Training checkpoint cost", "",
                     "machine: \(machineDescription()), \(Parallel.workers) cores; \(Date()); \(repeats) saves and loads each, into runs/ on this disk",
                     "", "| model | parameters | size MB | save s (median, min–max) | save MB/s | load s (median) |", "|---|---:|---:|---:|---:|---:|"]
        for (name, config) in [((model as NSString).lastPathComponent, try BertCheckpoint(directory: model).config), ("BERT-base shape", BertConfig())] {
            let classifier = SequenceClassifier(config: config, outputs: 2, context: BuildContext(maxBatch: 1, maxLength: 8))
            classifier.parameters.initialiseRandomly(seed: 1)
            let optimizer = Optimizer(parameters: classifier.parameters, weightDecay: 0.01, maxGradNorm: 1, settings: .init())
            let root = "runs/.checkpoint-benchmark-\(ProcessInfo.processInfo.processIdentifier)"
            defer { try? FileManager.default.removeItem(atPath: root) }
            var saves: [Double] = [], loads: [Double] = [], bytes = 0
            for step in 1...repeats {
                var state = TrainingCheckpoint.State.start(hyperparameters: Hyperparameters(), job: [:], codeVersion: nil)
                state.step = step
                var start = Date()
                let checkpoint = try TrainingCheckpoint.save(to: root, parameters: classifier.parameters, optimizer: optimizer, state: state)
                saves.append(Date().timeIntervalSince(start))
                bytes = try FileManager.default.contentsOfDirectory(atPath: checkpoint.directory).reduce(0) {
                    $0 + ((try FileManager.default.attributesOfItem(atPath: checkpoint.directory + "/" + $1))[.size] as? Int ?? 0)
                }
                start = Date()
                try checkpoint.restore(parameters: classifier.parameters, optimizer: optimizer)
                loads.append(Date().timeIntervalSince(start))
                try FileManager.default.removeItem(atPath: checkpoint.directory)
            }
            saves.sort()
            loads.sort()
            let megabytes = Double(bytes) / 1e6
            lines.append(String(format: "| %@ | %.1f M | %.0f | %.2f (%.2f–%.2f) | %.0f | %.2f |", name, Double(classifier.parameters.count) / 1e6,
                                megabytes, saves[repeats / 2], saves[0], saves[repeats - 1], megabytes / saves[repeats / 2], loads[repeats / 2]))
        }
        lines.append("")
        lines.append("A checkpoint is three times the parameters in fp32 (the values and AdamW's two moments) plus a small JSON state.")
        let table = lines.joined(separator: "\n") + "\n"
        print(table)
        try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(Data(table.utf8), to: output)
        print("written to \(output)")
    }
}
