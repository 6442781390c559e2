import ArgumentParser
import BertKit
import Foundation

/// `finetune runs`: the runs in results.db, one run in detail, or several side by side.
struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and compare runs recorded in results.db.",
        subcommands: [List.self, Show.self, Compare.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per run, newest first.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Option(help: "Only runs of this task.") var task: String?
        @Option(help: "At most this many runs.") var limit = 50

        func run() throws {
            let db = try open(databaseOptions)
            var sql = """
                SELECT s.run_id, s.task, s.status, s.experiment, s.seed, p.learning_rate, p.batch_size, p.epochs,
                       s.main_metric, s.final_main, s.best_main, s.seconds, s.started_at
                  FROM run_summary s LEFT JOIN run_params p ON p.run_id = s.run_id
                """
            var values: [SQLValue] = []
            if let task { sql += " WHERE s.task = ?"; values.append(.text(task)) }
            sql += " ORDER BY s.run_id DESC LIMIT ?"
            values.append(.integer(Int64(limit)))
            let rows = try db.database.query(sql, values)
            printTable(["id", "task", "status", "experiment", "seed", "lr", "batch", "epochs", "metric", "final", "best", "seconds", "started"],
                       rows.map { r in
                           ["run_id", "task", "status", "experiment", "seed", "learning_rate", "batch_size", "epochs",
                            "main_metric", "final_main", "best_main", "seconds", "started_at"].map { format(r[$0]) }
                       })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything recorded about one run.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Run id.") var id: Int64

        func run() throws {
            let db = try open(databaseOptions).database
            guard let run = try db.query("SELECT * FROM runs WHERE id = ?", [.integer(id)]).first else {
                throw ValidationError("no run \(id) in \(databaseOptions.db)")
            }
            for key in ["id", "task", "model", "experiment", "status", "started_at", "ended_at", "seed", "git_commit",
                        "host", "output_dir", "main_metric", "error"] where run[key] != nil && run[key] != .null {
                print("\(key.padding(toLength: 12, withPad: " ", startingAt: 0)) \(format(run[key]))")
            }
            print("\nhyper-parameters")
            for p in try db.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [.integer(id)]) {
                print("  \(format(p["key"]).padding(toLength: 24, withPad: " ", startingAt: 0)) \(format(p["value"]))")
            }
            print("\nmetrics (final and best)")
            printTable(["split", "metric", "final", "best", "last step"],
                       try db.query("SELECT * FROM metric_summary WHERE run_id = ? ORDER BY split, name", [.integer(id)])
                           .map { row in ["split", "name", "final", "best", "last_step"].map { format(row[$0]) } })
            let artifacts = try db.query("SELECT path, kind, bytes, sha256 FROM artifacts WHERE run_id = ?", [.integer(id)])
            if !artifacts.isEmpty {
                print("\nartifacts")
                printTable(["kind", "path", "bytes", "sha256"], artifacts.map { row in ["kind", "path", "bytes", "sha256"].map { format(row[$0]) } })
            }
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Runs side by side: hyper-parameters and metrics.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Run ids.") var ids: [Int64]

        func run() throws {
            let db = try open(databaseOptions).database
            var rows: [String: [String]] = [:]
            var order: [String] = []
            func put(_ key: String, _ column: Int, _ value: String) {
                if rows[key] == nil { rows[key] = Array(repeating: "", count: ids.count); order.append(key) }
                rows[key]![column] = value
            }
            for (column, id) in ids.enumerated() {
                guard let run = try db.query("SELECT * FROM runs WHERE id = ?", [.integer(id)]).first else {
                    throw ValidationError("no run \(id) in \(databaseOptions.db)")
                }
                for key in ["task", "model", "experiment", "status", "seed"] { put(key, column, format(run[key])) }
                for p in try db.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [.integer(id)]) {
                    put(format(p["key"]), column, format(p["value"]))
                }
                for m in try db.query("SELECT * FROM metric_summary WHERE run_id = ? AND split != 'train' ORDER BY split, name", [.integer(id)]) {
                    put("\(format(m["split"])) \(format(m["name"])) final", column, format(m["final"]))
                    put("\(format(m["split"])) \(format(m["name"])) best", column, format(m["best"]))
                }
            }
            printTable(["run"] + ids.map(String.init), order.map { [$0] + rows[$0]! })
        }
    }
}

func open(_ options: DatabaseOptions) throws -> ResultsDatabase {
    guard FileManager.default.fileExists(atPath: options.db) else {
        throw ValidationError("\(options.db) does not exist yet: it is made by the first `finetune --task ...` run")
    }
    return try ResultsDatabase(path: options.db)
}

func format(_ value: SQLValue?) -> String {
    switch value {
    case .real(let v)?: v == v.rounded() && abs(v) < 1e6 ? String(format: "%.1f", v) : String(format: abs(v) < 1e-2 ? "%.3g" : "%.4f", v)
    case let v?: v.description
    case nil: ""
    }
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
