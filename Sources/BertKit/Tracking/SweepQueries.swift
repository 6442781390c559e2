import Foundation

/// A sweep's row in `sweeps`.
public struct SweepRecord: Sendable {
    public let id: Int64
    public let task: String
    /// The swept hyper-parameters and their values, in the order given.
    public let grid: [(name: String, values: [String])]
    public let seeds: [UInt64]
    /// The hyper-parameter options every run of the sweep gets.
    public let arguments: [String]
    public let jobs: Int
    public let status: ResultsDatabase.Status
    public let startedAt: String
    public let endedAt: String?
    public let error: String?
}

/// A run of a sweep: which configuration and seed it trains.
public struct SweepRun: Sendable {
    public let configuration: String
    public let seed: UInt64
    public let run: Int64
    public let status: ResultsDatabase.Status
    public let checkpoint: String?
}

/// One configuration of a sweep as `sweep_summary` reduces it: its completed runs' best main metric.
public struct ConfigurationSummary: Sendable {
    public let configuration: String
    public let runs: Int
    public let mainMetric: String?
    public let mean: Double?
    public let sd: Double?
    public let min: Double?
    public let max: Double?
    public let meanSeconds: Double?
}

extension ResultsDatabase {
    /// Records a new sweep as `running` in this process and returns its id.
    public func startSweep(task: String, grid: [(name: String, values: [String])], seeds: [UInt64], arguments: [String], jobs: Int) throws -> Int64 {
        let gridJSON = try JSONSerialization.data(withJSONObject: grid.map { [$0.name: $0.values] })
        let seedsJSON = try JSONSerialization.data(withJSONObject: seeds.map { NSNumber(value: $0) })
        let argumentsJSON = try JSONSerialization.data(withJSONObject: arguments)
        return try database.writeTransaction {
            try database.query("""
                INSERT INTO sweeps (task, grid, seeds, arguments, jobs, status, started_at, host, pid)
                VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)
                """, [.text(task), .text(String(decoding: gridJSON, as: UTF8.self)), .text(String(decoding: seedsJSON, as: UTF8.self)),
                      .text(String(decoding: argumentsJSON, as: UTF8.self)), .integer(Int64(jobs)), .text(Self.now()),
                      .text(ProcessInfo.processInfo.hostName), .integer(Int64(ProcessInfo.processInfo.processIdentifier))])
            return database.lastInsertedRowID
        }
    }

    /// Marks a sweep `running` again in this process (`finetune sweep --resume`).
    public func resumeSweep(_ id: Int64, jobs: Int) throws {
        try database.writeTransaction {
            try database.query("UPDATE sweeps SET status = 'running', ended_at = NULL, error = NULL, jobs = ?, host = ?, pid = ? WHERE id = ?",
                               [.integer(Int64(jobs)), .text(ProcessInfo.processInfo.hostName),
                                .integer(Int64(ProcessInfo.processInfo.processIdentifier)), .integer(id)])
        }
    }

    public func finishSweep(_ id: Int64, status: Status, error: String? = nil) throws {
        try database.writeTransaction {
            try database.query("UPDATE sweeps SET status = ?, ended_at = ?, error = ? WHERE id = ?",
                               [.text(status.rawValue), .text(Self.now()), error.map { .text($0) } ?? .null, .integer(id)])
        }
    }

    /// Ties a run to its sweep, configuration and seed.
    public func linkRun(_ run: Int64, toSweep sweep: Int64, configuration: String, seed: UInt64) throws {
        try database.writeTransaction {
            try database.query("INSERT OR IGNORE INTO sweep_runs (sweep_id, configuration, seed, run_id) VALUES (?, ?, ?, ?)",
                               [.integer(sweep), .text(configuration), .integer(Int64(bitPattern: seed)), .integer(run)])
        }
    }

    public func sweep(_ id: Int64) throws -> SweepRecord? {
        try database.query("SELECT * FROM sweeps WHERE id = ?", [.integer(id)]).first.map(Self.sweepRecord)
    }

    /// Sweeps, newest first.
    public func sweeps(limit: Int = 50) throws -> [SweepRecord] {
        try database.query("SELECT * FROM sweeps ORDER BY id DESC LIMIT ?", [.integer(Int64(limit))]).map(Self.sweepRecord)
    }

    static func sweepRecord(_ r: [String: SQLValue]) -> SweepRecord {
        let grid = (try? JSONSerialization.jsonObject(with: Data((r.text("grid") ?? "[]").utf8))) as? [[String: [String]]] ?? []
        let seeds = (try? JSONSerialization.jsonObject(with: Data((r.text("seeds") ?? "[]").utf8))) as? [NSNumber] ?? []
        let arguments = (try? JSONSerialization.jsonObject(with: Data((r.text("arguments") ?? "[]").utf8))) as? [String] ?? []
        return SweepRecord(id: r.integer("id") ?? 0, task: r.text("task") ?? "", grid: grid.compactMap { $0.first.map { ($0.key, $0.value) } },
                           seeds: seeds.map(\.uint64Value), arguments: arguments, jobs: Int(r.integer("jobs") ?? 1),
                           status: Status(recorded: r.text("status")), startedAt: r.text("started_at") ?? "", endedAt: r.text("ended_at"),
                           error: r.text("error"))
    }

    /// The runs of a sweep, oldest first.
    public func runs(ofSweep id: Int64) throws -> [SweepRun] {
        try database.query("""
            SELECT w.configuration, w.seed, w.run_id, r.status, r.checkpoint FROM sweep_runs w JOIN runs r ON r.id = w.run_id
             WHERE w.sweep_id = ? ORDER BY w.run_id
            """, [.integer(id)]).map { r in
            SweepRun(configuration: r.text("configuration") ?? "", seed: UInt64(bitPattern: r.integer("seed") ?? 0),
                     run: r.integer("run_id") ?? 0, status: Status(recorded: r.text("status")), checkpoint: r.text("checkpoint"))
        }
    }

    /// A sweep's configurations as `sweep_summary` reduces them, best mean first.
    public func summary(ofSweep id: Int64) throws -> [ConfigurationSummary] {
        try database.query("SELECT * FROM sweep_summary WHERE sweep_id = ? ORDER BY mean DESC", [.integer(id)]).map { r in
            ConfigurationSummary(configuration: r.text("configuration") ?? "", runs: Int(r.integer("runs") ?? 0),
                                 mainMetric: r.text("main_metric"), mean: r.real("mean"), sd: r.real("sd"), min: r.real("min"),
                                 max: r.real("max"), meanSeconds: r.real("mean_seconds"))
        }
    }

    /// A run's best main metric on dev, if it has one yet.
    public func bestMainMetric(of run: Int64) throws -> Double? {
        try database.query("SELECT best_main FROM run_summary WHERE run_id = ?", [.integer(run)]).first?.real("best_main")
    }

    /// Each completed run's best main metric in a configuration of a sweep (one per seed).
    public func bestScores(ofSweep id: Int64, configuration: String) throws -> [Double] {
        try database.query("""
            SELECT s.best_main FROM sweep_runs w JOIN run_summary s ON s.run_id = w.run_id
             WHERE w.sweep_id = ? AND w.configuration = ? AND s.status = 'completed' AND s.best_main IS NOT NULL ORDER BY w.seed
            """, [.integer(id), .text(configuration)]).compactMap { $0.real("best_main") }
    }

    /// Sweeps left `running` by a process of this host that no longer exists are marked interrupted.
    func reapAbandonedSweeps() throws {
        let host = ProcessInfo.processInfo.hostName
        for row in try database.query("SELECT id, pid FROM sweeps WHERE status = 'running' AND host = ?", [.text(host)]) {
            guard case .integer(let id) = row["id"], case .integer(let pid) = row["pid"], Self.processHasEnded(pid: pid, host: host) else { continue }
            try database.writeTransaction {
                try database.query("UPDATE sweeps SET status = 'interrupted', ended_at = ?, error = ? WHERE id = ? AND status = 'running'",
                                   [.text(Self.now()), .text("process \(pid) ended without finishing the sweep"), .integer(id)])
            }
        }
    }

    // MARK: Predictions

    /// An evaluation's per-example predictions.
    public func logPredictions(_ run: Int64, split: String, step: Int, _ predictions: [ExamplePrediction]) throws {
        try database.writeTransaction {
            for (i, p) in predictions.enumerated() {
                try database.query("INSERT OR REPLACE INTO predictions (run_id, split, step, example, predicted, gold) VALUES (?, ?, ?, ?, ?, ?)",
                                   [.integer(run), .text(split), .integer(Int64(step)), .integer(Int64(i)), .text(p.predicted), .text(p.gold)])
            }
        }
    }

    /// The statement that reads a run's best evaluation's predictions (the evaluation its best model comes from:
    /// the best main metric among the evaluations that stored predictions), one row per example with its `step`.
    /// Its values: the run's id, the run's id, its main metric, the run's id.
    public static let bestPredictionsSQL = """
        SELECT p.step, p.example, p.predicted, p.gold FROM predictions p
         WHERE p.run_id = ? AND p.split = 'dev' AND p.step = (
               SELECT m.step FROM metrics m
                WHERE m.run_id = ? AND m.split = 'dev' AND m.name = ?
                  AND m.step IN (SELECT step FROM predictions WHERE run_id = ?)
                ORDER BY m.value DESC, m.step LIMIT 1)
         ORDER BY p.example
        """

    /// The predictions of a run's best evaluation (the one its best model comes from), with that step.
    public func bestPredictions(of run: Int64) throws -> (step: Int, predictions: [ExamplePrediction])? {
        guard let record = try self.run(run), let metric = record.mainMetric else { return nil }
        let rows = try database.query(Self.bestPredictionsSQL, [.integer(run), .integer(run), .text(metric), .integer(run)])
        guard let step = rows.first?.integer("step") else { return nil }
        return (Int(step), rows.map { ExamplePrediction(predicted: $0.text("predicted") ?? "", gold: $0.text("gold") ?? "") })
    }

    /// The plugin a run was trained with (recorded since results.db version 4).
    public func plugin(of run: Int64) throws -> String? {
        try database.query("SELECT plugin FROM runs WHERE id = ?", [.integer(run)]).first?.text("plugin")
    }
}
