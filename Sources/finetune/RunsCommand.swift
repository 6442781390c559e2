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
            printTable(["id", "task", "status", "experiment", "seed", "lr", "batch", "epochs", "metric", "final", "best", "seconds", "started"],
                       runs.map { r in
                           ["\(r.id)", r.task, r.status, r.experiment ?? "", r.seed.map(String.init) ?? "", format(r.learningRate),
                            r.batchSize.map(String.init) ?? "", format(r.epochs), r.mainMetric ?? "", format(r.finalMain),
                            format(r.bestMain), format(r.seconds), r.startedAt]
                       })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything recorded about one run.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Run id.") var id: Int64

        func run() throws {
            let db = try open(databaseOptions)
            guard let run = try db.run(id) else { throw ValidationError("no run \(id) in \(databaseOptions.db)") }
            for (name, value) in run.fields { print("\(name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(value)") }
            print("\nhyper-parameters")
            for p in try db.parameters(of: id) { print("  \(p.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(p.value)") }
            print("\nmetrics (final and best)")
            printTable(["split", "metric", "final", "best", "last step"],
                       try db.metricSummaries(of: id).map { [$0.split, $0.name, format($0.final), format($0.best), "\($0.lastStep)"] })
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
                guard let run = try db.run(id) else { throw ValidationError("no run \(id) in \(databaseOptions.db)") }
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
            printTable(["run"] + ids.map(String.init), order.map { [$0] + rows[$0]! })
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
            guard let first = ids.first, let run = try db.run(first) else { throw ValidationError("name runs that exist") }
            let metric = self.metric ?? run.mainMetric ?? "f1"
            try AtomicFile.write(Data(try db.learningCurves(runs: ids, metric: metric).svg().utf8), to: output)
            print("wrote \(output)")
        }
    }
}

func open(_ options: DatabaseOptions) throws -> ResultsDatabase {
    guard FileManager.default.fileExists(atPath: options.db) else {
        throw ValidationError("\(options.db) does not exist yet: it is made by the first `finetune --task ...` run")
    }
    return try ResultsDatabase(path: options.db)
}

/// A recorded number as a table shows it: whole numbers with one decimal, small ones in 3 significant digits.
func format(_ value: Double?) -> String {
    guard let v = value else { return "" }
    return v == v.rounded() && abs(v) < 1e6 ? String(format: "%.1f", v) : String(format: abs(v) < 1e-2 ? "%.3g" : "%.4f", v)
}

/// Prints rows under a header, columns padded to their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max()! }
    func line(_ cells: [String]) -> String {
        zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }
    print(line(header))
    print(line(widths.map { String(repeating: "-", count: $0) }))
    rows.forEach { print(line($0)) }
}
