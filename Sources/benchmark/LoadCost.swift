import BertKit
import Foundation

/// What a program pays to use a model through the library (`FineTunedModel`, `SentenceEncoder`): seconds to load
/// (read the weights, pack or quantise them), the first call and the median warm call on one short text, and the
/// resident memory the load added.
struct LoadCost {
    let encoder: String
    let classifier: String?
    let output: String
    let repeats = 5

    func run() throws {
        var lines = ["# The cost of loading a model in a program", "",
                     "machine: \(machineDescription()), \(Parallel.workers) cores; \(Date()); \(repeats) loads each, in one process",
                     "", "| model | precision | load ms (median, min-max) | first call ms | warm call ms (median) | resident MB added |",
                     "|---|---|---:|---:|---:|---:|"]
        let text = "The company said profits rose."
        var cases: [(String, Precision, () throws -> (() throws -> Void))] = [
            ((encoder as NSString).lastPathComponent + " (SentenceEncoder)", .float32, {
                let model = try SentenceEncoder(folder: encoder)
                return { _ = try model.embed(text) }
            }),
        ]
        if let classifier {
            for precision in [Precision.float32, .int8] {
                cases.append(((classifier as NSString).lastPathComponent + " (FineTunedModel)", precision, {
                    let model = try FineTunedModel(folder: classifier, precision: precision)
                    return { _ = try model.classify(text, pair: "Profits went up, the firm said.") }
                }))
            }
        }
        for (name, precision, load) in cases {
            var loads: [Double] = [], firsts: [Double] = [], warms: [Double] = [], added: [Double] = []
            for _ in 0..<repeats {
                let before = ProcessMemory.residentMegabytes
                var start = Date()
                let call = try load()
                loads.append(Date().timeIntervalSince(start) * 1000)
                added.append(ProcessMemory.residentMegabytes - before)
                start = Date()
                try call()
                firsts.append(Date().timeIntervalSince(start) * 1000)
                var times: [Double] = []
                for _ in 0..<20 {
                    start = Date()
                    try call()
                    times.append(Date().timeIntervalSince(start) * 1000)
                }
                warms.append(median(times))
            }
            lines.append(String(format: "| %@ | %@ | %.0f (%.0f-%.0f) | %.1f | %.2f | %.0f |", name, precision.rawValue, median(loads),
                                loads.min()!, loads.max()!, median(firsts), median(warms), median(added)))
        }
        let table = lines.joined(separator: "\n") + "\n"
        print(table, terminator: "")
        try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try table.write(toFile: output, atomically: true, encoding: .utf8)
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
