import Foundation

/// One run as `finetune runs` lists it: `run_summary` with the most compared hyper-parameters.
public struct RunSummary: Sendable {
    public let id: Int64
    public let task: String
    public let status: String
    public let experiment: String?
    public let seed: Int64?
    public let learningRate: Double?
    public let batchSize: Int64?
    public let epochs: Double?
    /// Optimizer steps, when the run was set to train for a number of steps rather than epochs.
    public let maxSteps: Int64?
    public let mainMetric: String?
    public let finalMain: Double?
    public let bestMain: Double?
    public let seconds: Double?
    public let startedAt: String
}

/// A run's row in `runs`.
public struct RunRecord: Sendable {
    public let id: Int64
    public let task: String
    public let model: String
    public let experiment: String?
    public let status: String
    public let startedAt: String
    public let endedAt: String?
    public let seed: Int64?
    public let gitCommit: String?
    public let host: String?
    public let outputDirectory: String?
    public let mainMetric: String?
    public let error: String?
    public let stopReason: String?
    /// The latest training checkpoint's folder.
    public let checkpoint: String?

    /// The fields as name and value, in the order `runs show` prints them; absent ones left out.
    public var fields: [(String, String)] {
        [("id", "\(id)"), ("task", task), ("model", model), ("experiment", experiment), ("status", status),
         ("started_at", startedAt), ("ended_at", endedAt), ("seed", seed.map(String.init)), ("git_commit", gitCommit),
         ("host", host), ("output_dir", outputDirectory), ("main_metric", mainMetric), ("error", error),
         ("stop_reason", stopReason), ("checkpoint", checkpoint)]
            .compactMap { name, value in value.map { (name, $0) } }
    }
}

/// A metric's final and best value in one split of a run (`metric_summary`).
public struct MetricSummary: Sendable {
    public let split: String
    public let name: String
    public let final: Double?
    public let best: Double?
    public let lastStep: Int64
}

/// A file or folder a run wrote.
public struct ArtifactRecord: Sendable {
    public let path: String
    public let kind: String
    public let bytes: Int64
    public let sha256: String
}

extension ResultsDatabase {
    /// Runs, newest first, optionally of one task only.
    public func runs(task: String? = nil, limit: Int = 50) throws -> [RunSummary] {
        var sql = """
            SELECT s.run_id, s.task, s.status, s.experiment, s.seed, p.learning_rate, p.batch_size, p.epochs, p.max_steps,
                   s.main_metric, s.final_main, s.best_main, s.seconds, s.started_at
              FROM run_summary s LEFT JOIN run_params p ON p.run_id = s.run_id
            """
        var values: [SQLValue] = []
        if let task { sql += " WHERE s.task = ?"; values.append(.text(task)) }
        sql += " ORDER BY s.run_id DESC LIMIT ?"
        values.append(.integer(Int64(limit)))
        return try database.query(sql, values).map { r in
            RunSummary(id: r.integer("run_id") ?? 0, task: r.text("task") ?? "", status: r.text("status") ?? "",
                       experiment: r.text("experiment"), seed: r.integer("seed"), learningRate: r.real("learning_rate"),
                       batchSize: r.integer("batch_size"), epochs: r.real("epochs"), maxSteps: r.integer("max_steps"), mainMetric: r.text("main_metric"),
                       finalMain: r.real("final_main"), bestMain: r.real("best_main"), seconds: r.real("seconds"),
                       startedAt: r.text("started_at") ?? "")
        }
    }

    /// The run with this id, or nil.
    public func run(_ id: Int64) throws -> RunRecord? {
        try database.query("SELECT * FROM runs WHERE id = ?", [.integer(id)]).first.map { r in
            RunRecord(id: id, task: r.text("task") ?? "", model: r.text("model") ?? "", experiment: r.text("experiment"),
                      status: r.text("status") ?? "", startedAt: r.text("started_at") ?? "", endedAt: r.text("ended_at"),
                      seed: r.integer("seed"), gitCommit: r.text("git_commit"), host: r.text("host"),
                      outputDirectory: r.text("output_dir"), mainMetric: r.text("main_metric"), error: r.text("error"),
                      stopReason: r.text("stop_reason"), checkpoint: r.text("checkpoint"))
        }
    }

    /// A run's hyper-parameters as recorded, by name.
    public func parameters(of run: Int64) throws -> [(name: String, value: String)] {
        try database.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [.integer(run)])
            .map { ($0.text("key") ?? "", $0.text("value") ?? "") }
    }

    /// The final and best value of every metric of a run, by split and name.
    public func metricSummaries(of run: Int64) throws -> [MetricSummary] {
        try database.query("SELECT * FROM metric_summary WHERE run_id = ? ORDER BY split, name", [.integer(run)]).map { r in
            MetricSummary(split: r.text("split") ?? "", name: r.text("name") ?? "", final: r.real("final"),
                          best: r.real("best"), lastStep: r.integer("last_step") ?? 0)
        }
    }

    /// The files and folders a run wrote.
    public func artifacts(of run: Int64) throws -> [ArtifactRecord] {
        try database.query("SELECT path, kind, bytes, sha256 FROM artifacts WHERE run_id = ? ORDER BY rowid", [.integer(run)]).map { r in
            ArtifactRecord(path: r.text("path") ?? "", kind: r.text("kind") ?? "", bytes: r.integer("bytes") ?? 0,
                           sha256: r.text("sha256") ?? "")
        }
    }
}

/// A row's columns as Swift values (nil for NULL or an absent column).
extension [String: SQLValue] {
    public func text(_ column: String) -> String? {
        switch self[column] {
        case .null?, nil: nil
        case let value?: value.description
        }
    }
    public func integer(_ column: String) -> Int64? {
        switch self[column] {
        case .integer(let v)?: v
        case .real(let v)?: Int64(exactly: v)
        case .text(let t)?: Int64(t)
        default: nil
        }
    }
    public func real(_ column: String) -> Double? { self[column]?.double }
}

extension ResultsDatabase {
    /// A metric's values in one split of a run, by step.
    public func series(of run: Int64, split: String, name: String) throws -> [(step: Int, value: Double)] {
        try database.query("SELECT step, value FROM metrics WHERE run_id = ? AND split = ? AND name = ? AND value IS NOT NULL ORDER BY step",
                           [.integer(run), .text(split), .text(name)])
            .compactMap { r in r.integer("step").flatMap { s in r.real("value").map { (Int(s), $0) } } }
    }

    /// Learning curves of runs: training loss and a dev metric against the step, one line per run.
    public func learningCurves(runs: [Int64], metric: String) throws -> LineChart {
        var loss: [LineChart.Series] = [], dev: [LineChart.Series] = []
        for id in runs {
            guard let run = try self.run(id) else { throw UsageError("no run \(id) in \(path)") }
            let name = "run \(id) (\(run.task), seed \(run.seed.map(String.init) ?? "?"))"
            loss.append(.init(name: name, points: try series(of: id, split: "train", name: "loss").map { (Double($0.step), $0.value) }))
            dev.append(.init(name: name, points: try series(of: id, split: "dev", name: metric).map { (Double($0.step), $0.value) }))
        }
        return LineChart(panels: [.init(title: "training loss", xLabel: "step", yLabel: "loss", series: loss),
                                  .init(title: "dev \(metric)", xLabel: "step", yLabel: metric, series: dev)])
    }

    /// How far a sweep's seeds spread around their mean at a step, as a chart's band.
    public enum Spread: Sendable {
        /// From the lowest seed to the highest.
        case range
        /// The mean plus and minus the seeds' standard deviation (n − 1).
        case standardDeviation
    }

    /// Learning curves of a sweep: per configuration, the mean over its seeds at each step, with a band of their
    /// `spread`.
    public func learningCurves(sweep: Int64, metric: String, spread: Spread = .range) throws -> LineChart {
        let runs = try self.runs(ofSweep: sweep)
        guard !runs.isEmpty else { throw UsageError("sweep \(sweep) has no runs in \(path)") }
        var configurations: [String] = []
        for r in runs where !configurations.contains(r.configuration) { configurations.append(r.configuration) }
        func averaged(split: String, name: String) throws -> [LineChart.Series] {
            try configurations.map { configuration in
                var byStep: [Int: [Double]] = [:]
                for r in runs where r.configuration == configuration {
                    for (step, value) in try series(of: r.run, split: split, name: name) { byStep[step, default: []].append(value) }
                }
                let steps = byStep.keys.sorted()
                return .init(name: configuration, points: steps.map { (Double($0), Significance.mean(byStep[$0]!)) },
                             band: steps.map { step in
                                 let values = byStep[step]!
                                 switch spread {
                                 case .range: return (Double(step), values.min()!, values.max()!)
                                 case .standardDeviation:
                                     let (m, sd) = (Significance.mean(values), values.count > 1 ? Significance.variance(values).squareRoot() : 0)
                                     return (Double(step), m - sd, m + sd)
                                 }
                             })
            }
        }
        let band = spread == .range ? "band: lowest to highest" : "band: ± one standard deviation"
        return LineChart(panels: [.init(title: "training loss (mean over seeds, \(band))", xLabel: "step", yLabel: "loss",
                                        series: try averaged(split: "train", name: "loss")),
                                  .init(title: "dev \(metric) (mean over seeds, \(band))", xLabel: "step", yLabel: metric,
                                        series: try averaged(split: "dev", name: metric))])
    }
}
