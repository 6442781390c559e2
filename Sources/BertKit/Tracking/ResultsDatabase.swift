import Foundation

/// results.db: every run with its hyper-parameters, metrics and files, in SQLite (WAL mode, so runs in other
/// processes can write at the same time and readers never wait). Nothing else in the toolkit writes SQL: runs
/// are written through `TrackedRun` and read through the typed queries below, or by the SELECTs that
/// `finetune dashboard` shows beside each of its tables.
///
/// Tables: `runs`, `params` (one row per hyper-parameter, and what a run learns as it starts: `total_steps`,
/// `processes`, `hosts`, `threads_per_process`), `metrics` (name, split, step, epoch, value, time),
/// `artifacts` (path, kind, bytes, sha256). Views: `metric_summary` (final and best value of each metric of
/// each run), `run_summary` (one row per run with its main metric), `run_params` (every declared
/// hyper-parameter as a column, typed).
public final class ResultsDatabase {
    public enum Status: String, Sendable {
        case running, completed, failed, interrupted

        /// A status as a row records it; a row that records none that this version knows counts as failed.
        init(recorded text: String?) { self = text.flatMap(Status.init(rawValue:)) ?? .failed }
    }

    package let database: SQLiteDatabase
    /// The file.
    public let path: String

    /// 1: the first schema. 2: `run_params` gained `precision`; since then `run_params` is recreated whenever
    /// the declared hyper-parameters change. 3: `runs` gained `last_seen` (the last step's time, what an
    /// abandoned run's end is taken to be), `stop_reason` and `checkpoint` (the latest); a `resumes` table.
    /// 4: `runs` gained `plugin`. 5: `run_summary` looks each run's metrics up by the index instead of through `metric_summary` (which
    /// aggregates every metric row of every run: 0.6 s for a million rows).
    static let schemaVersion = 5

    /// The device and inode of the file when it was opened: SQLite goes on writing a file that was deleted or
    /// replaced, where no one will read it again.
    private var identity: (device: UInt64, inode: UInt64)?

    private static func identity(of path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Throws when the file at `path` is no longer the one this connection writes (deleted, or replaced by
    /// another), so that a run never reports success with a record no one can read.
    public func checkStillInPlace() throws {
        let now = Self.identity(of: path)
        guard let opened = identity, let now, now == opened else {
            throw UsageError("\(path) was \(now == nil ? "deleted" : "replaced by another file") while this process was writing it")
        }
    }

    /// Opens (or creates) the database; `parameterColumns` are the columns of `run_params`, by default every
    /// declared hyper-parameter.
    public init(path: String, parameterColumns: [HyperparameterDeclaration] = Hyperparameters.table().map(\.declaration)) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        database = try SQLiteDatabase(path: path)
        identity = Self.identity(of: path)
        // Switching a new database to WAL takes a lock that SQLite's busy timeout does not wait for, so two
        // runs creating results.db at the same moment retry here instead of failing.
        try database.retryingWhileBusy { try database.execute("PRAGMA journal_mode = WAL") }
        try database.execute("PRAGMA foreign_keys = ON")
        try database.writeTransaction {
            let version = try database.query("PRAGMA user_version").first?["user_version"]?.double ?? 0
            if Int(version) < Self.schemaVersion {
                // Views are created only where missing: a changed one is dropped first.
                try database.execute("DROP VIEW IF EXISTS run_summary")
                try database.execute(Self.schema)
                let columns = Set(try database.query("SELECT name FROM pragma_table_info('runs')").map { $0["name"]?.description ?? "" })
                for column in ["last_seen", "stop_reason", "checkpoint", "plugin"] where !columns.contains(column) {
                    try database.execute("ALTER TABLE runs ADD COLUMN \(column) TEXT")
                }
                try database.execute("PRAGMA user_version = \(Self.schemaVersion)")
            }
            // The view follows the declared hyper-parameters: a new one becomes a column without a new version.
            let columns = try database.query("SELECT name FROM pragma_table_info('run_params')").map { $0["name"]?.description ?? "" }
            if columns != ["run_id"] + parameterColumns.map(\.name) {
                try database.execute(Self.runParamsView(parameterColumns))
            }
        }
        try reapAbandonedRuns()
        try reapAbandonedSweeps()
    }

    /// Opens an existing results.db for reading only (`finetune dashboard`): nothing is created, upgraded or
    /// reaped, and SQLite refuses any write on this connection. In WAL mode this reader never blocks a run that
    /// writes the same file, nor waits for it.
    public init(readingOnly path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw UsageError("\(path): no such file (results.db is created by the first run: finetune train, or finetune --task mrpc)")
        }
        self.path = path
        database = try SQLiteDatabase(path: path, readOnly: true)
        identity = Self.identity(of: path)
        let version = Int(try database.query("PRAGMA user_version").first?["user_version"]?.double ?? 0)
        guard version == Self.schemaVersion else {
            throw UsageError("\(path) is results.db version \(version), and this finetune reads version \(Self.schemaVersion); "
                + "a command that writes it upgrades it (finetune runs list)")
        }
    }

    /// Whether process `pid` of `host` is known to have ended; only a process of this host can be looked at.
    public static func processHasEnded(pid: Int64, host: String?) -> Bool {
        host == ProcessInfo.processInfo.hostName && kill(pid_t(pid), 0) != 0 && errno == ESRCH
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
            error TEXT,
            last_seen TEXT,
            stop_reason TEXT,
            checkpoint TEXT,
            plugin TEXT
        );
        CREATE TABLE IF NOT EXISTS resumes (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            from_step INTEGER NOT NULL,
            time TEXT NOT NULL,
            host TEXT,
            pid INTEGER
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
        CREATE TABLE IF NOT EXISTS predictions (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            split TEXT NOT NULL,
            step INTEGER NOT NULL,
            example INTEGER NOT NULL,
            predicted TEXT NOT NULL,
            gold TEXT NOT NULL,
            PRIMARY KEY (run_id, split, step, example)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS sweeps (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task TEXT NOT NULL,
            grid TEXT NOT NULL,
            seeds TEXT NOT NULL,
            arguments TEXT NOT NULL,
            jobs INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
            started_at TEXT NOT NULL,
            ended_at TEXT,
            host TEXT,
            pid INTEGER,
            error TEXT
        );
        CREATE TABLE IF NOT EXISTS sweep_runs (
            sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
            configuration TEXT NOT NULL,
            seed INTEGER NOT NULL,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            PRIMARY KEY (sweep_id, run_id)
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
                   -- final and best as metric_summary has them, for one run through the index
                   (SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.split = 'dev' AND m.name = r.main_metric
                     ORDER BY m.step DESC, m.rowid DESC LIMIT 1) AS final_main,
                   (SELECT CASE WHEN r.main_metric LIKE '%loss%' THEN MIN(m.value) ELSE MAX(m.value) END FROM metrics m
                     WHERE m.run_id = r.id AND m.split = 'dev' AND m.name = r.main_metric) AS best_main,
                   (SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.split = 'train' AND m.name = 'loss'
                     ORDER BY m.step DESC, m.rowid DESC LIMIT 1) AS final_train_loss,
                   r.error
              FROM runs r;
        CREATE VIEW IF NOT EXISTS sweep_summary AS
            SELECT w.sweep_id, w.configuration, COUNT(*) AS runs, s.main_metric,
                   AVG(s.best_main) AS mean,
                   CASE WHEN COUNT(*) > 1
                        THEN sqrt(MAX(0, (SUM(s.best_main * s.best_main) - COUNT(*) * AVG(s.best_main) * AVG(s.best_main)) / (COUNT(*) - 1)))
                   END AS sd,
                   MIN(s.best_main) AS min, MAX(s.best_main) AS max, AVG(s.seconds) AS mean_seconds
              FROM sweep_runs w JOIN run_summary s ON s.run_id = w.run_id
             WHERE s.status = 'completed'
             GROUP BY w.sweep_id, w.configuration;
        """

    /// `run_params`: one row per run, one column per hyper-parameter, cast to its type.
    static func runParamsView(_ columns: [HyperparameterDeclaration]) -> String {
        let selected = columns.map { c in
            c.sqlType == "TEXT"
                ? "MAX(CASE WHEN key = '\(c.name)' THEN NULLIF(value, '') END) AS \(c.name)"
                : "MAX(CASE WHEN key = '\(c.name)' THEN CAST(NULLIF(value, '') AS \(c.sqlType)) END) AS \(c.name)"
        }
        return """
            DROP VIEW IF EXISTS run_params;
            CREATE VIEW run_params AS
                SELECT run_id,
                       \(selected.joined(separator: ",\n               "))
                  FROM params GROUP BY run_id;
            """
    }

    /// How results.db writes times: ISO 8601 in UTC with milliseconds.
    private static func timestampFormat() -> ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }

    static func now() -> String { timestampFormat().string(from: Date()) }

    /// A time as results.db records it (`started_at`, `time`, ...), or nil when the text is not one.
    public static func date(_ timestamp: String) -> Date? { timestampFormat().date(from: timestamp) }

    /// Records a new run as `running` and returns its id.
    public func startRun(task: String, plugin: String, model: String, experiment: String?, mainMetric: String, seed: UInt64,
                         gitCommit: String?, outputDirectory: String?, parameters: [(String, String)]) throws -> Int64 {
        try database.writeTransaction {
            try database.query("""
                INSERT INTO runs (task, plugin, model, experiment, main_metric, status, started_at, seed, git_commit, host, pid, output_dir)
                VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)
                """, [.text(task), .text(plugin), .text(model), experiment.map { .text($0) } ?? .null, .text(mainMetric), .text(Self.now()),
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
            try database.query("UPDATE runs SET last_seen = ? WHERE id = ?", [.text(time), .integer(run)])
            for (name, value) in values.sorted(by: { $0.key < $1.key }) {
                try database.query("INSERT INTO metrics (run_id, name, split, step, epoch, value, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   [.integer(run), .text(name), .text(split), .integer(Int64(step)),
                                    epoch.map { .real($0) } ?? .null, value.isFinite ? .real(value) : .null, .text(time)])
            }
        }
    }

    /// Records a file the run produced, with its size and sha256.
    public func logArtifact(_ run: Int64, path: String, kind: String) throws {
        let bytes = Self.size(of: path)
        let digest = try FileDigest.sha256(ofFile: path)
        try database.writeTransaction {
            try database.query("DELETE FROM artifacts WHERE run_id = ? AND path = ?", [.integer(run), .text(path)])
            try database.query("INSERT INTO artifacts (run_id, path, kind, bytes, sha256, time) VALUES (?, ?, ?, ?, ?, ?)",
                               [.integer(run), .text(path), .text(kind), .integer(Int64(bytes)), .text(digest), .text(Self.now())])
        }
    }

    /// A file's size, or the sum of the sizes of the files under a folder.
    static func size(of path: String) -> Int {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { return 0 }
        func fileSize(_ file: String) -> Int { (try? fm.attributesOfItem(atPath: file))?[.size] as? Int ?? 0 }
        guard isDirectory.boolValue else { return fileSize(path) }
        return (fm.subpaths(atPath: path) ?? []).reduce(0) { total, sub in
            var d: ObjCBool = false
            _ = fm.fileExists(atPath: path + "/" + sub, isDirectory: &d)
            return total + (d.boolValue ? 0 : fileSize(path + "/" + sub))
        }
    }

    /// With `onlyIfRunning`, a run that has already ended keeps its status (a signal that arrives while a
    /// failed run's processes exit does not make it interrupted).
    public func finishRun(_ run: Int64, status: Status, error: String? = nil, stopReason: String? = nil,
                          onlyIfRunning: Bool = false) throws {
        try database.writeTransaction {
            try database.query("UPDATE runs SET status = ?, ended_at = ?, error = ?, stop_reason = ? WHERE id = ?"
                               + (onlyIfRunning ? " AND status = 'running'" : ""),
                               [.text(status.rawValue), .text(Self.now()), error.map { .text($0) } ?? .null,
                                stopReason.map { .text($0) } ?? .null, .integer(run)])
        }
    }

    /// Records, among the run's `params`, how many processes train it (`processes`), on which hosts (`hosts`, one
    /// per process, comma-separated) and with how many threads each (`threads_per_process`); a resumed run
    /// records its own.
    public func recordProcesses(_ run: Int64, count: Int, hosts: [String], threadsEach: Int) throws {
        try setParameters(run, [("processes", String(count)), ("hosts", hosts.joined(separator: ",")), ("threads_per_process", String(threadsEach))])
    }

    /// Records, among the run's `params`, how many optimizer steps its training takes (`total_steps`), for the
    /// progress and time left that `finetune dashboard` shows of a running run.
    func recordTotalSteps(_ run: Int64, _ steps: Int) throws {
        try setParameters(run, [("total_steps", String(steps))])
    }

    /// Sets `params` rows that the run learns as it starts rather than from its options.
    private func setParameters(_ run: Int64, _ values: [(String, String)]) throws {
        try database.writeTransaction {
            for (key, value) in values {
                try database.query("INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)", [.integer(run), .text(key), .text(value)])
            }
        }
    }

    /// Records the run's latest checkpoint.
    /// Records the run's latest training checkpoint; nil once its checkpoints are gone.
    func setCheckpoint(_ run: Int64, _ path: String?) throws {
        try database.writeTransaction {
            try database.query("UPDATE runs SET checkpoint = ?, last_seen = ? WHERE id = ?",
                               [path.map { .text($0) } ?? .null, .text(Self.now()), .integer(run)])
        }
    }

    /// Marks a run `running` again in this process, from a checkpoint at `step`: what it logged after that step
    /// is deleted (the resumed run logs it again), and the resumption is recorded in `resumes`.
    func resumeRun(_ run: Int64, fromStep step: Int) throws {
        let time = Self.now(), host = ProcessInfo.processInfo.hostName, pid = Int64(ProcessInfo.processInfo.processIdentifier)
        try database.writeTransaction {
            // One run, one writer: of two resumptions started at once, the second finds the run running and stops.
            let current = try database.query("SELECT status, host, pid FROM runs WHERE id = ?", [.integer(run)]).first
            if current?.text("status") == Status.running.rawValue {
                throw UsageError("run \(run) is running already (process \(current?.integer("pid").map(String.init) ?? "?") on "
                    + "\(current?.text("host") ?? "?")); one process at a time writes a run")
            }
            try database.query("""
                UPDATE runs SET status = 'running', ended_at = NULL, error = NULL, stop_reason = NULL, host = ?, pid = ?, last_seen = ?
                 WHERE id = ?
                """, [.text(host), .integer(pid), .text(time), .integer(run)])
            try database.query("DELETE FROM metrics WHERE run_id = ? AND step > ?", [.integer(run), .integer(Int64(step))])
            try database.query("DELETE FROM predictions WHERE run_id = ? AND step > ?", [.integer(run), .integer(Int64(step))])
            try database.query("INSERT INTO resumes (run_id, from_step, time, host, pid) VALUES (?, ?, ?, ?, ?)",
                               [.integer(run), .integer(Int64(step)), .text(time), .text(host), .integer(pid)])
        }
    }

    /// Runs left `running` by a process of this host that no longer exists (killed, or the machine went down)
    /// are marked interrupted, so that nothing claims to be running forever.
    func reapAbandonedRuns() throws {
        let host = ProcessInfo.processInfo.hostName
        let running = try database.query("SELECT id, pid, output_dir FROM runs WHERE status = 'running' AND host = ?", [.text(host)])
        for row in running {
            guard case .integer(let id) = row["id"], case .integer(let pid) = row["pid"] else { continue }
            if Self.processHasEnded(pid: pid, host: host) {
                // A crash leaves a marker in the run's folder (CrashMarker): then the run failed, and why is known.
                let folder = row.text("output_dir")
                let crash = folder.flatMap { CrashMarker.recordedSignal(in: $0) }
                let (status, error) = crash.map { signal in
                    (Status.failed, "process \(pid) crashed (signal \(signal), \(String(cString: strsignal(signal))))")
                } ?? (Status.interrupted, "process \(pid) ended without finishing the run")
                try database.writeTransaction {
                    // It ended when it was last seen alive, not now.
                    try database.query("""
                        UPDATE runs SET status = ?, ended_at = COALESCE(last_seen, started_at), error = ?
                         WHERE id = ? AND status = 'running'
                        """, [.text(status.rawValue), .text(error), .integer(id)])
                }
                if crash != nil, let folder { unlink(folder + "/" + CrashMarker.fileName) }
            }
        }
    }
}
