import BertKit
import Foundation

/// A results.db the size of a busy project's, for timing `finetune dashboard`: `runs` runs of a few tasks with
/// their hyper-parameters (through `ResultsDatabase`, as training records them), and `metricRows` metric rows
/// spread evenly over them (training loss, learning rate and gradient norm at every step, a dev metric pair at
/// every tenth), one transaction per run.
struct SyntheticResults {
    let runs: Int
    let metricRows: Int
    let output: String

    func run() throws {
        for suffix in ["", "-wal", "-shm"] { unlink(output + suffix) }
        let database = try ResultsDatabase(path: output)
        let tasks = ["mrpc", "sst2", "conll2003", "stsb"]
        var random = SeededRandom(seed: 7)
        func uniform() -> Double { Double(random.nextBits() >> 11) / Double(1 << 53) }
        let started = Date()
        var written = 0
        for r in 0..<runs {
            let task = tasks[r % tasks.count]
            let learningRate = [1e-5, 2e-5, 5e-5, 1e-4][(r / tasks.count) % 4]
            let id = try database.startRun(task: task, plugin: task == "conll2003" ? "token-classification" : "sequence-classification",
                                           model: "models/all-MiniLM-L6-v2", experiment: nil, mainMetric: "f1", seed: UInt64(r % 5),
                                           gitCommit: nil, outputDirectory: "runs/\(r + 1)-\(task)",
                                           parameters: [("learning_rate", "\(learningRate)"), ("batch_size", "\([16, 32][r % 2])"),
                                                        ("epochs", "3"), ("seed", "\(r % 5)"), ("precision", "fp32")])
            // This run's share of the rows: three training rows a step, two dev rows every tenth step.
            let quota = metricRows / runs + (r < metricRows % runs ? 1 : 0)
            let steps = Double(quota) * 10 / 32
            let quality = 0.75 + 0.1 * uniform()
            try database.database.writeTransaction {
                var rows = 0, step = 0
                while rows < quota {
                    step += 1
                    let progress = min(1, Double(step) / steps)
                    var values: [(String, String, Double)] = [("loss", "train", 0.7 * (1 - progress) + 0.1 * uniform()),
                                                              ("learning_rate", "train", learningRate * (1 - progress)),
                                                              ("grad_norm", "train", 1 + uniform())]
                    if step % 10 == 0 { values += [("accuracy", "dev", quality * progress), ("f1", "dev", (quality + 0.05) * progress)] }
                    for (name, split, value) in values.prefix(quota - rows) {
                        try database.database.query("""
                            INSERT INTO metrics (run_id, name, split, step, epoch, value, time) VALUES (?, ?, ?, ?, ?, ?, ?)
                            """, [.integer(id), .text(name), .text(split), .integer(Int64(step)), .real(3 * progress), .real(value),
                                  .text("2026-12-07T12:00:00.000Z")])
                        rows += 1
                    }
                }
                written += rows
                try database.database.query("UPDATE runs SET status = 'completed', ended_at = '2026-12-07T12:10:00.000Z' WHERE id = ?",
                                            [.integer(id)])
            }
        }
        print(String(format: "%@: %d runs, %d metric rows, written in %.1f s", output, runs, written, Date().timeIntervalSince(started)))
    }
}
