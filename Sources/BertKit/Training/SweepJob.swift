import Foundation

/// A sweep from start to outcome: recorded in results.db (or taken up again), its missing runs started and its
/// interrupted ones resumed, `jobs` at a time, and how it ended recorded. Each run is a process of its own (the
/// `finetune` program, which `executable` names), in a process group of its own so that Ctrl-C reaches each run
/// once, through this process; its output goes to a log file beside its run folder. In a group of processes
/// (`mpirun ... finetune sweep`), each takes every `size`-th run and process 0 records the sweep.
public struct SweepJob {
    public let sweep: SweepRecord
    public let database: ResultsDatabase
    /// Runs at once on this process; the cores are shared between them (`BERTKIT_THREADS`).
    public let jobs: Int
    /// The folder of the runs' folders; the logs go to `outputRoot/sweep-ID/`.
    public let outputRoot: String
    /// The program that trains one run.
    public let executable: String
    public var processes = ProcessGroup.single

    /// How a sweep (or this process's share of it) ended.
    public struct Outcome: Sendable {
        public let status: ResultsDatabase.Status
        public let error: String?

        public init(status: ResultsDatabase.Status, error: String?) {
            (self.status, self.error) = (status, error)
        }
    }

    public init(sweep: SweepRecord, database: ResultsDatabase, jobs: Int, outputRoot: String, executable: String,
                processes: ProcessGroup = .single) throws {
        guard jobs >= 1 else { throw UsageError("jobs must be at least 1") }
        (self.sweep, self.database, self.jobs, self.outputRoot, self.executable, self.processes) =
            (sweep, database, jobs, outputRoot, executable, processes)
    }

    /// Records a new sweep of `task` over `plan` and returns its id, once its first run has been checked to start
    /// (a bad task or option is found now, not in the first child). `arguments` are the options every run gets
    /// besides the plan's (model, database, experiment, data folder).
    public static func start(task: String, plan: SweepPlan, experiment: String?, model: String, dataDirectory: String?,
                             jobs: Int, database: ResultsDatabase) throws -> Int64 {
        _ = try FineTuningRun(spec: TaskSpec.load(task), experiment: experiment.map { try Experiment.load($0) },
                              arguments: plan.runs[0].arguments, model: model)
        var common = ["--task", task, "--model", model, "--db", database.path]
        if let experiment { common += ["--experiment", experiment] }
        if let dataDirectory { common += ["--data-dir", dataDirectory] }
        return try database.startSweep(task: task, grid: plan.grid, seeds: plan.seeds, arguments: common + plan.fixed, jobs: jobs)
    }

    /// Marks sweep `id` running again in this process, unless it is running elsewhere.
    public static func resume(_ id: Int64, jobs: Int, database: ResultsDatabase) throws {
        guard let record = try database.sweep(id) else { throw UsageError("no sweep \(id) in \(database.path)") }
        if record.status == .running { throw UsageError("sweep \(id) is still running (pid recorded in the sweeps table)") }
        try database.resumeSweep(id, jobs: jobs)
    }

    /// What is left to do: each planned run not completed, to start, or to resume when it was interrupted with a
    /// checkpoint. A run recorded as running elsewhere is left alone (and said so through `log`).
    enum Work {
        case start(SweepPlan.PlannedRun)
        case resume(run: Int64, SweepPlan.PlannedRun)

        var planned: SweepPlan.PlannedRun {
            switch self { case .start(let p), .resume(_, let p): p }
        }
    }

    func remainingWork(_ plan: SweepPlan, log: (String) -> Void) throws -> [Work] {
        let existing = try database.runs(ofSweep: sweep.id)
        var work: [Work] = []
        for planned in plan.runs {
            let latest = existing.last { $0.configuration == planned.configuration && $0.seed == planned.seed }
            switch latest?.status {
            case .completed?: continue
            case .interrupted? where latest?.checkpoint != nil: work.append(.resume(run: latest!.run, planned))
            case .running?: log("sweep \(sweep.id): run \(latest!.run) (\(planned.configuration), seed \(planned.seed)) is running elsewhere; left alone")
            default: work.append(.start(planned))
            }
        }
        return work
    }

    /// Runs this process's share of the remaining runs and returns how they ended: interrupted when `stop` was
    /// set (each run then stops after its step, with a checkpoint), failed when a run failed or could not start.
    /// Each run's start and end goes to `log`, one line each.
    public func run(stop: StopFlag, log: (String) -> Void) throws -> Outcome {
        let plan = try SweepPlan(grid: sweep.grid, seeds: sweep.seeds)
        var work = try remainingWork(plan, log: log)
        if processes.isMain {
            log("sweep \(sweep.id): \(sweep.task), \(plan.runs.count) runs (\(plan.configurations.count) configurations x \(plan.seeds.count) seeds); "
                + "\(plan.runs.count - work.count) done, \(work.count) to go, \(jobs) at a time"
                + (processes.isDistributed ? " on each of \(processes.size) processes" : ""))
        }
        // Every process has read the sweep's runs before any starts one; then each takes its share.
        try processes.barrier()
        if processes.isDistributed { work = work.enumerated().filter { $0.offset % processes.size == processes.rank }.map(\.element) }
        let who = processes.isDistributed ? "process \(processes.rank) on \(ProcessInfo.processInfo.hostName): " : ""
        let logs = "\(outputRoot)/sweep-\(sweep.id)"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let threads = max(1, ProcessGroup.threads / jobs)
        var active: [(pid: pid_t, work: Work, log: String)] = []
        var failures: [String] = [], forwarded = false
        var pending = work[...]
        while !pending.isEmpty || !active.isEmpty {
            while active.count < jobs, !stop.isSet, let next = pending.popFirst() {
                let planned = next.planned
                let arguments = switch next {
                case .start(let p):
                    sweep.arguments + p.arguments + ["--output-dir", outputRoot, "--sweep", String(sweep.id), "--sweep-configuration", p.configuration]
                case .resume(let run, _):
                    ["resume", String(run), "--db", database.path]
                }
                let file = "\(logs)/\(planned.configuration.replacingOccurrences(of: " ", with: "_"))-seed\(planned.seed).log"
                do {
                    let pid = try ChildProcess.spawn(executable, arguments, log: file, environment: ["BERTKIT_THREADS": String(threads)])
                    active.append((pid, next, file))
                    let doing = switch next { case .start: "starting"; case .resume(let run, _): "resuming run \(run)" }
                    log("\(who)sweep \(sweep.id): \(planned.configuration), seed \(planned.seed): \(doing) (log \(file))")
                } catch {
                    failures.append("\(planned.configuration) seed \(planned.seed): \(error)")
                }
            }
            if stop.isSet && !forwarded {
                for child in active { kill(child.pid, SIGINT) }
                forwarded = true
            }
            usleep(100_000)
            var ended: [(work: Work, log: String, status: Int32)] = []
            active.removeAll { child in
                guard let status = ChildProcess.exitStatus(child.pid) else { return false }
                ended.append((child.work, child.log, status))
                return true
            }
            for (work, file, status) in ended {
                let planned = work.planned
                let run = try database.runs(ofSweep: sweep.id).last { $0.configuration == planned.configuration && $0.seed == planned.seed }
                let score = try run.flatMap { try database.bestMainMetric(of: $0.run) }
                let outcome = status == 0 ? "completed" + (score.map { String(format: ", best %.4f", $0) } ?? "")
                    : status == 130 ? "interrupted" : "failed (exit \(status))"
                log("\(who)sweep \(sweep.id): \(planned.configuration), seed \(planned.seed): run \(run.map { String($0.run) } ?? "?") \(outcome)")
                if status != 0 && status != 130 { failures.append("\(planned.configuration) seed \(planned.seed) (log \(file))") }
            }
        }
        if stop.isSet { return Outcome(status: .interrupted, error: "stopped by a signal") }
        return failures.isEmpty ? Outcome(status: .completed, error: nil)
            : Outcome(status: .failed, error: "\(failures.count) run(s) failed: " + failures.joined(separator: "; "))
    }

    /// The sweep's outcome from every process's: interrupted if any was, else failed if any failed.
    public static func combine(_ outcomes: [Outcome]) -> Outcome {
        let status: ResultsDatabase.Status = outcomes.contains { $0.status == .interrupted } ? .interrupted
            : outcomes.allSatisfy { $0.status == .completed } ? .completed : .failed
        let errors = outcomes.compactMap(\.error)
        return Outcome(status: status, error: errors.isEmpty ? nil : errors.joined(separator: "; "))
    }

    /// Records how the sweep ended.
    public func finish(_ outcome: Outcome) throws {
        try database.finishSweep(sweep.id, status: outcome.status, error: outcome.error)
    }
}

/// A child process in its own process group, its output appended to a log file, polled without blocking.
enum ChildProcess {
    static func spawn(_ executable: String, _ arguments: [String], log: String, environment extra: [String: String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // The child starts with nothing blocked (this process blocks SIGINT and SIGTERM for its signal thread).
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        // A run starts alone, whatever launched this process.
        var environment = ProcessInfo.processInfo.environment.filter { !ProcessGroup.isLauncherVariable($0.key) }
        for (key, value) in extra { environment[key] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw UsageError("cannot start \(executable): \(String(cString: strerror(result)))") }
        return pid
    }

    /// The exit status when the process has ended (128 + the signal when a signal ended it), else nil.
    static func exitStatus(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
