import Foundation

/// results.db: every run with its hyper-parameters, metrics and files, in SQLite (WAL mode, so runs in other
/// processes can write at the same time and readers never wait). Nothing else in the toolkit touches SQL.
///
/// Tables: `runs`, `params` (one row per hyper-parameter), `metrics` (name, split, step, epoch, value, time),
/// `artifacts` (path, kind, bytes, sha256). Views: `metric_summary` (final and best value of each metric of
/// each run), `run_summary` (one row per run with its main metric), `run_params` (common hyper-parameters
/// as columns).
public final class ResultsDatabase {
    public enum Status: String, Sendable { case running, completed, failed, interrupted }

    public let database: SQLiteDatabase

    /// 1: the first schema. 2: `run_params` gained `precision` (views are recreated on upgrade; tables kept).
    static let schemaVersion = 2

    public init(path: String) throws {
        database = try SQLiteDatabase(path: path)
        // Switching a new database to WAL takes a lock that SQLite's busy timeout does not wait for, so two
        // runs creating results.db at the same moment retry here instead of failing.
        try database.retryingWhileBusy { try database.execute("PRAGMA journal_mode = WAL") }
        try database.execute("PRAGMA foreign_keys = ON")
        try database.writeTransaction {
            let version = try database.query("PRAGMA user_version").first?["user_version"]?.double ?? 0
            if Int(version) < Self.schemaVersion {
                try database.execute(Self.schema)
                try database.execute("PRAGMA user_version = \(Self.schemaVersion)")
            }
        }
        try reapAbandonedRuns()
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task TEXT NOT NULL,
            model TEXT NOT NULL,
            experiment TEXT,
            main_metric TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
            started_at TEXT NOT NULL,
            ended_at TEXT,
            seed INTEGER,
            git_commit TEXT,
            host TEXT,
            pid INTEGER,
            output_dir TEXT,
            error TEXT
        );
        CREATE TABLE IF NOT EXISTS params (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_id, key)
        );
        CREATE TABLE IF NOT EXISTS metrics (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            split TEXT NOT NULL,
            step INTEGER NOT NULL,
            epoch REAL,
            value REAL,
            time TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, split, name, step);
        CREATE TABLE IF NOT EXISTS artifacts (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            kind TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            time TEXT NOT NULL
        );
        CREATE VIEW IF NOT EXISTS metric_summary AS
            SELECT run_id, split, name,
                   (SELECT m2.value FROM metrics m2
                     WHERE m2.run_id = m.run_id AND m2.split = m.split AND m2.name = m.name
                     ORDER BY m2.step DESC, m2.rowid DESC LIMIT 1) AS final,
                   CASE WHEN name LIKE '%loss%' THEN MIN(value) ELSE MAX(value) END AS best,
                   MAX(step) AS last_step
              FROM metrics m GROUP BY run_id, split, name;
        CREATE VIEW IF NOT EXISTS run_summary AS
            SELECT r.id AS run_id, r.task, r.model, r.experiment, r.status, r.seed, r.started_at, r.ended_at,
                   ROUND((julianday(r.ended_at) - julianday(r.started_at)) * 86400.0, 1) AS seconds,
                   r.main_metric,
                   (SELECT final FROM metric_summary s WHERE s.run_id = r.id AND s.split = 'dev' AND s.name = r.main_metric) AS final_main,
                   (SELECT best FROM metric_summary s WHERE s.run_id = r.id AND s.split = 'dev' AND s.name = r.main_metric) AS best_main,
                   (SELECT final FROM metric_summary s WHERE s.run_id = r.id AND s.split = 'train' AND s.name = 'loss') AS final_train_loss,
                   r.error
              FROM runs r;
        DROP VIEW IF EXISTS run_params;
        CREATE VIEW run_params AS
            SELECT run_id,
                   MAX(CASE WHEN key = 'learning_rate' THEN CAST(value AS REAL) END) AS learning_rate,
                   MAX(CASE WHEN key = 'batch_size' THEN CAST(value AS INTEGER) END) AS batch_size,
                   MAX(CASE WHEN key = 'epochs' THEN CAST(value AS REAL) END) AS epochs,
                   MAX(CASE WHEN key = 'max_steps' THEN value END) AS max_steps,
                   MAX(CASE WHEN key = 'max_length' THEN CAST(value AS INTEGER) END) AS max_length,
                   MAX(CASE WHEN key = 'warmup_ratio' THEN CAST(value AS REAL) END) AS warmup_ratio,
                   MAX(CASE WHEN key = 'weight_decay' THEN CAST(value AS REAL) END) AS weight_decay,
                   MAX(CASE WHEN key = 'gradient_accumulation' THEN CAST(value AS INTEGER) END) AS gradient_accumulation,
                   MAX(CASE WHEN key = 'seed' THEN CAST(value AS INTEGER) END) AS seed,
                   MAX(CASE WHEN key = 'precision' THEN value END) AS precision
              FROM params GROUP BY run_id;
        """

    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }

    /// Records a new run as `running` and returns its id.
    public func startRun(task: String, model: String, experiment: String?, mainMetric: String, seed: UInt64,
                         gitCommit: String?, outputDirectory: String?, parameters: [(String, String)]) throws -> Int64 {
        try database.writeTransaction {
            try database.query("""
                INSERT INTO runs (task, model, experiment, main_metric, status, started_at, seed, git_commit, host, pid, output_dir)
                VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)
                """, [.text(task), .text(model), experiment.map { .text($0) } ?? .null, .text(mainMetric), .text(Self.now()),
                      .integer(Int64(bitPattern: seed)), gitCommit.map { .text($0) } ?? .null,
                      .text(ProcessInfo.processInfo.hostName), .integer(Int64(ProcessInfo.processInfo.processIdentifier)),
                      outputDirectory.map { .text($0) } ?? .null])
            let id = database.lastInsertedRowID
            for (key, value) in parameters {
                try database.query("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)", [.integer(id), .text(key), .text(value)])
            }
            return id
        }
    }

    /// Sets the output folder once the run's id (which names it) is known.
    public func setOutputDirectory(_ run: Int64, _ directory: String) throws {
        try database.writeTransaction {
            try database.query("UPDATE runs SET output_dir = ? WHERE id = ?", [.text(directory), .integer(run)])
        }
    }

    public func logMetrics(_ run: Int64, split: String, step: Int, epoch: Double?, _ values: [String: Double]) throws {
        let time = Self.now()
        try database.writeTransaction {
            for (name, value) in values.sorted(by: { $0.key < $1.key }) {
                try database.query("INSERT INTO metrics (run_id, name, split, step, epoch, value, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   [.integer(run), .text(name), .text(split), .integer(Int64(step)),
                                    epoch.map { .real($0) } ?? .null, value.isFinite ? .real(value) : .null, .text(time)])
            }
        }
    }

    /// Records a file the run produced, with its size and sha256.
    public func logArtifact(_ run: Int64, path: String, kind: String) throws {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let digest = try SHA256.hexDigest(ofFile: path)
        try database.writeTransaction {
            try database.query("DELETE FROM artifacts WHERE run_id = ? AND path = ?", [.integer(run), .text(path)])
            try database.query("INSERT INTO artifacts (run_id, path, kind, bytes, sha256, time) VALUES (?, ?, ?, ?, ?, ?)",
                               [.integer(run), .text(path), .text(kind), .integer(Int64(bytes)), .text(digest), .text(Self.now())])
        }
    }

    public func finishRun(_ run: Int64, status: Status, error: String? = nil) throws {
        try database.writeTransaction {
            try database.query("UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ?",
                               [.text(status.rawValue), .text(Self.now()), error.map { .text($0) } ?? .null, .integer(run)])
        }
    }

    /// Runs left `running` by a process of this host that no longer exists (killed, or the machine went down)
    /// are marked interrupted, so that nothing claims to be running forever.
    func reapAbandonedRuns() throws {
        let host = ProcessInfo.processInfo.hostName
        let running = try database.query("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", [.text(host)])
        for row in running {
            guard case .integer(let id) = row["id"], case .integer(let pid) = row["pid"] else { continue }
            if kill(pid_t(pid), 0) != 0 && errno == ESRCH {
                try database.writeTransaction {
                    try database.query("UPDATE runs SET status = 'interrupted', ended_at = ?, error = ? WHERE id = ? AND status = 'running'",
                                       [.text(Self.now()), .text("process \(pid) ended without finishing the run"), .integer(id)])
                }
            }
        }
    }
}
