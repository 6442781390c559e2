import ArgumentParser
import BertKit
import Foundation

/// `finetune runs`: the runs in results.db, one run in detail, or several side by side.
struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and compare runs recorded in results.db.",
        subcommands: [List.self, Show.self, Compare.self, Plot.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per run, newest first.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Option(help: "Only runs of this task.") var task: String?
        @Option(help: "At most this many runs.") var limit = 50

        func run() throws {
            let runs = try open(databaseOptions).runs(task: task, limit: limit)
            printTable(["id", "task", "status", "experiment", "seed", "lr", "batch", "length", "metric", "final", "best", "seconds", "started"],
                       runs.map { r in
                           let length = r.maxSteps.map { "\($0) steps" } ?? r.epochs.map { "\(format($0, digits: 3)) epochs" } ?? ""
                           return ["\(r.id)", r.task, r.status, r.experiment ?? "", r.seed.map(String.init) ?? "", format(r.learningRate),
                                   r.batchSize.map(String.init) ?? "", length, r.mainMetric ?? "", format(r.finalMain),
                                   format(r.bestMain), r.seconds.map { String(format: "%.0f", $0) } ?? "", r.startedAt]
                       })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything recorded about one run.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Run id.") var id: Int64

        func run() throws {
            let db = try open(databaseOptions)
            guard let run = try db.run(id) else { throw UsageError("no run \(id) in \(databaseOptions.db)") }
            for (name, value) in run.fields { print("\(name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(value)") }
            print("\nhyper-parameters")
            for p in try db.parameters(of: id) { print("  \(p.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(p.value)") }
            // Only evaluations have a best (by the main metric); training's figures are the last step's.
            print("\nmetrics (final; and at the best evaluation)")
            printTable(["split", "metric", "final", "best", "last step"],
                       try db.metricSummaries(of: id).map { m in
                           [m.split, m.name, format(m.final), m.split == "train" ? "" : format(m.best), "\(m.lastStep)"]
                       })
            let artifacts = try db.artifacts(of: id)
            if !artifacts.isEmpty {
                print("\nartifacts")
                printTable(["kind", "path", "bytes", "sha256"], artifacts.map { [$0.kind, $0.path, "\($0.bytes)", $0.sha256] })
            }
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Runs side by side: hyper-parameters and metrics.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Run ids.") var ids: [Int64]

        func run() throws {
            let db = try open(databaseOptions)
            var rows: [String: [String]] = [:]
            var order: [String] = []
            func put(_ key: String, _ column: Int, _ value: String) {
                if rows[key] == nil { rows[key] = Array(repeating: "", count: ids.count); order.append(key) }
                rows[key]![column] = value
            }
            for (column, id) in ids.enumerated() {
                guard let run = try db.run(id) else { throw UsageError("no run \(id) in \(databaseOptions.db)") }
                for (key, value) in [("task", run.task), ("model", run.model), ("experiment", run.experiment ?? ""),
                                     ("status", run.status), ("seed", run.seed.map(String.init) ?? "")] {
                    put(key, column, value)
                }
                for p in try db.parameters(of: id) { put(p.name, column, p.value) }
                for m in try db.metricSummaries(of: id) where m.split != "train" {
                    put("\(m.split) \(m.name) final", column, format(m.final))
                    put("\(m.split) \(m.name) best", column, format(m.best))
                }
            }
            // A row whose runs differ is marked, so that what sets them apart stands out.
            printTable(["", "run"] + ids.map(String.init), order.map { key in
                let values = rows[key]!
                return [Set(values).count > 1 ? "*" : "", key] + values
            })
            print("(* the runs differ)")
            if ids.count == 2 {
                do {
                    let (metric, examples, c) = try db.pairedBootstrap(ids[0], ids[1])
                    print("\nsignificance: \(metric) of run \(ids[0]) minus run \(ids[1]) = \(signed(c.difference)), 95 % interval "
                          + "[\(signed(c.lower)), \(signed(c.upper))], p = \(String(format: "%.3g", c.pValue)) "
                          + "(paired bootstrap over \(examples) dev examples, 10,000 resamples)")
                } catch {
                    print("\nsignificance: not computed (\(error))")
                }
            }
        }
    }

    struct Plot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Learning curves as SVG: training loss and a dev metric against the step, one line per run.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Run ids.") var ids: [Int64]
        @Option(help: "Dev metric to plot (default: the first run's main metric).") var metric: String?
        @Option(help: "SVG file to write.") var output: String

        func run() throws {
            let db = try open(databaseOptions)
            guard let first = ids.first, let run = try db.run(first) else { throw UsageError("name runs that exist") }
            let metric = self.metric ?? run.mainMetric ?? "f1"
            try AtomicFile.write(Data(try db.learningCurves(runs: ids, metric: metric).svg().utf8), to: output)
            print("wrote \(output)")
        }
    }
}

func open(_ options: DatabaseOptions) throws -> ResultsDatabase {
    guard FileManager.default.fileExists(atPath: options.db) else {
        throw UsageError("\(options.db) does not exist yet: it is made by the first `finetune --task ...` run")
    }
    return try ResultsDatabase(path: options.db)
}

/// A recorded number as a table shows it: whole numbers as they are, small ones in 3 significant digits,
/// others with `digits` decimals.
func format(_ value: Double?, digits: Int = 4) -> String {
    guard let v = value else { return "" }
    if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
    return abs(v) < 1e-2 ? String(format: "%.3g", v) : String(format: "%.\(digits)f", v)
}

/// Prints rows under a header, columns padded to their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max()! }
    func line(_ cells: [String]) -> String {
        var text = zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        while text.last == " " { text.removeLast() }
        return text
    }
    print(line(header))
    print(line(widths.map { String(repeating: "-", count: $0) }))
    rows.forEach { print(line($0)) }
}
