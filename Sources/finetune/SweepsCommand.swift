import ArgumentParser
import BertKit
import Foundation

/// `finetune sweeps`: what sweeps there are, and one sweep's configurations ranked with honest comparisons.
struct Sweeps: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List sweeps, show one ranked, or plot its learning curves.",
        subcommands: [List.self, Show.self, Plot.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per sweep, newest first.")
        @OptionGroup var databaseOptions: DatabaseOptions

        func run() throws {
            let db = try open(databaseOptions)
            let rows = try db.sweeps().map { s -> [String] in
                let done = try db.runs(ofSweep: s.id).filter { $0.status == .completed }.count
                let planned = s.grid.reduce(1) { $0 * $1.values.count } * s.seeds.count
                return [String(s.id), s.task, s.grid.map { "\($0.name)=\($0.values.joined(separator: ","))" }.joined(separator: " "),
                        s.seeds.map(String.init).joined(separator: ","), s.status.rawValue, "\(done)/\(planned)", s.startedAt]
            }
            printTable(["sweep", "task", "grid", "seeds", "status", "completed", "started"], rows)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A sweep's configurations, best mean first: runs, mean +- sd, min, max, time; each against the best by Welch's t-test over seeds.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Sweep id.") var id: Int64

        func run() throws { try Self.printSummary(id, database: try open(databaseOptions)) }

        static func printSummary(_ id: Int64, database: ResultsDatabase) throws {
            guard let sweep = try database.sweep(id) else { throw UsageError("no sweep \(id) in \(database.path)") }
            let summaries = try database.summary(ofSweep: id)
            let metric = summaries.first?.mainMetric ?? "main metric"
            print("sweep \(id): \(sweep.task), \(sweep.status.rawValue); \(metric) is each run's best on dev; * marks the best mean")
            guard let best = summaries.first else { print("no completed runs yet"); return }
            let rows = try summaries.map { s -> [String] in
                var against = ["", "", ""]
                if s.configuration != best.configuration, let w = try database.welch(sweep: id, s.configuration, best.configuration) {
                    against = [signed(w.difference), "[\(signed(w.lower)), \(signed(w.upper))]", String(format: "%.3g", w.pValue)]
                }
                return [s.configuration + (s.configuration == best.configuration ? " *" : ""), String(s.runs),
                        "\(format(s.mean)) +- \(s.sd.map { format($0) } ?? "-")", format(s.min), format(s.max),
                        s.meanSeconds.map { String(format: "%.0f s", $0) } ?? ""] + against
            }
            printTable(["configuration", "runs", "mean +- sd", "min", "max", "time", "vs best", "95 % interval", "p (Welch)"], rows)
            print("SQL: SELECT * FROM sweep_summary WHERE sweep_id = \(id) ORDER BY mean DESC;")
        }
    }

    struct Plot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Learning curves of a sweep as SVG: per configuration, the mean over seeds with a band from the lowest to the highest.")
        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "Sweep id.") var id: Int64
        @Option(help: "Dev metric to plot (default: the task's main metric).") var metric: String?
        @Option(help: "SVG file to write.") var output: String

        func run() throws {
            let db = try open(databaseOptions)
            let metric = try self.metric ?? db.summary(ofSweep: id).first?.mainMetric ?? "f1"
            try AtomicFile.write(Data(try db.learningCurves(sweep: id, metric: metric).svg().utf8), to: output)
            print("wrote \(output)")
        }
    }
}

func signed(_ value: Double) -> String { (value >= 0 ? "+" : "") + format(value) }
