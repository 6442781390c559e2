import ArgumentParser
import BertKit
import Foundation

/// `finetune sweep`: trains every combination of a grid of hyper-parameters once per seed, each run a `finetune`
/// process of its own, tied together in results.db.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train every combination of a grid of hyper-parameters, once per seed, as runs tied to one sweep in results.db.",
        discussion: """
            finetune sweep --task mrpc --grid learning_rate=2e-5,5e-5,1e-4 --grid batch_size=16,32 --seeds 1,2,3 --jobs 2
            finetune sweep --file Experiments/sweeps/mrpc-learning-rates.json
            finetune sweep --resume 3

            Other hyper-parameter options (--epochs 2) apply to every run; a run's settings come from the task file, the \
            experiment, those options, then its grid values and seed. --jobs N runs N at once, the cores shared between \
            them (BERTKIT_THREADS). Each run's output goes to <output-dir>/sweep-<id>/; a run is an ordinary run (finetune \
            runs show). Ctrl-C stops every run after its step with a checkpoint; --resume keeps the finished runs, resumes \
            the interrupted ones from their checkpoints and starts the missing ones.

            Under mpirun (or srun) the runs are spread over the processes: process i takes runs i, i + n, ..., each an \
            ordinary run on its host (--jobs at a time), and process 0 records the sweep. results.db and the output \
            folder must then be on a file system every host shares, with working locks.
            """)

    @Option(help: "Task name or task file.") var task: String?
    @Option(help: "A sweep file (Experiments/NAME.json with task, grid, seeds and hyperparameters).") var file: String?
    @Option(help: "A swept hyper-parameter and its values: name=v1,v2,... (repeat for more).") var grid: [String] = []
    @Option(help: "Seeds, comma-separated; every configuration is trained once per seed.") var seeds = "1"
    @Option(help: "Runs at once.") var jobs = 1
    @Option(help: "Continue this interrupted sweep.") var resume: Int64?
    @Option(help: "Named hyper-parameter set, Experiments/NAME.json (or a path).") var experiment: String?
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var databaseOptions: DatabaseOptions
    @Option(help: "Folder for run outputs.") var outputDir = "runs"
    @Option(help: "Folder with the data of tasks the repository does not carry (or set BERTKIT_DATA_DIR).") var dataDir: String?
    @Argument(parsing: .allUnrecognized, help: .hidden) var hyperparameterOptions: [String] = []

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        if resume == nil && (task == nil) == (file == nil) { throw ValidationError("give a task (--task) and a --grid, or a sweep --file, or --resume ID") }
    }

    func run() throws {
        let processes = ProcessGroup.current
        // The processes' runs are independent and may take hours each: the final gathering waits as long as they do.
        processes.timeout = 0
        let database: ResultsDatabase, sweep: SweepRecord
        do {
            database = try ResultsDatabase(path: databaseOptions.db)
            // Process 0 records the sweep (or takes it up again); the others read it once it has.
            let id = try processes.agree(that: "start the sweep") { processes.isMain ? try startOrResume(database) : 0 }
            let shared = try processes.allGather(withUnsafeBytes(of: id) { Array($0) })[0]
            sweep = try database.sweep(shared.withUnsafeBytes { $0.load(as: Int64.self) })!
        } catch { fail(error, processes: processes) }
        let runner = SweepRunner(sweep: sweep, database: database, jobs: jobs, outputRoot: outputDir, processes: processes)
        let mine = runner.run()
        // Every process's outcome, for process 0 to record: interrupted if any was, else failed if any failed.
        let outcomes = (try? processes.allGather(Array((mine.status.rawValue + "\n" + (mine.error ?? "")).utf8)))?
            .map { String(decoding: $0, as: UTF8.self) } ?? [mine.status.rawValue + "\n" + (mine.error ?? "")]
        let statuses = outcomes.map { ResultsDatabase.Status(rawValue: String($0.prefix { $0 != "\n" })) ?? .failed }
        let status: ResultsDatabase.Status = statuses.contains(.interrupted) ? .interrupted
            : statuses.allSatisfy { $0 == .completed } ? .completed : .failed
        let errors = outcomes.map { $0.drop { $0 != "\n" }.dropFirst() }.filter { !$0.isEmpty }
        let error = errors.isEmpty ? nil : errors.joined(separator: "; ")
        guard processes.isMain else { Foundation.exit(mine.status == .completed ? 0 : mine.status == .interrupted ? 130 : 1) }
        try? database.finishSweep(sweep.id, status: status, error: error)
        try? Sweeps.Show.printSummary(sweep.id, database: database)
        if status != .completed {
            say("sweep \(sweep.id) \(status.rawValue)\(error.map { ": \($0)" } ?? ""); `finetune sweep --resume \(sweep.id)` goes on")
            Foundation.exit(status == .interrupted ? 130 : 1)
        }
    }

    /// Records a new sweep, or marks `--resume`'s running again; its id.
    private func startOrResume(_ database: ResultsDatabase) throws -> Int64 {
        if let resume {
            guard let record = try database.sweep(resume) else { throw UsageError("no sweep \(resume) in \(databaseOptions.db)") }
            if record.status == "running" { throw UsageError("sweep \(resume) is still running (pid recorded in the sweeps table)") }
            try database.resumeSweep(resume, jobs: jobs)
            return resume
        } else {
            let (taskName, plan): (String, SweepPlan)
            if let file {
                (taskName, plan) = try SweepPlan.load(file)
            } else {
                let seedList = try seeds.split(separator: ",").map { text -> UInt64 in
                    guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else { throw UsageError("--seeds expects integers, found '\(text)'") }
                    return seed
                }
                (taskName, plan) = (task!, try SweepPlan(grid: grid.map(SweepPlan.gridOption), seeds: seedList, fixed: hyperparameterOptions))
            }
            // Every run must at least start: a bad task or option is found now, not in the first child.
            _ = try FineTuningRun(spec: TaskSpec.load(taskName), experiment: experiment.map { try Experiment.load($0) },
                                  arguments: plan.runs[0].arguments, model: modelOptions.model)
            var common = ["--task", taskName, "--model", modelOptions.model, "--db", databaseOptions.db]
            if let experiment { common += ["--experiment", experiment] }
            if let dataDir { common += ["--data-dir", dataDir] }
            return try database.startSweep(task: taskName, grid: plan.grid, seeds: plan.seeds, arguments: common + plan.fixed, jobs: jobs)
        }
    }
}

/// Starts a sweep's missing runs and resumes its interrupted ones, `jobs` at a time, each a `finetune` process in
/// a process group of its own (so that Ctrl-C reaches each run once, through this process), with its output in a
/// log file. In a group of processes, each takes its share of the runs (every `size`-th).
struct SweepRunner {
    let sweep: SweepRecord
    let database: ResultsDatabase
    let jobs: Int
    let outputRoot: String
    var processes = ProcessGroup.single

    enum Work {
        case start(SweepPlan.PlannedRun)
        case resume(run: Int64, SweepPlan.PlannedRun)
    }

    func run() -> (status: ResultsDatabase.Status, error: String?) {
        let plan: SweepPlan
        let existing: [SweepRun]
        do {
            plan = try SweepPlan(grid: sweep.grid, seeds: sweep.seeds)
            existing = try database.runs(ofSweep: sweep.id)
        } catch { return (.failed, "\(error)") }
        var work: [Work] = []
        for planned in plan.runs {
            let latest = existing.last { $0.configuration == planned.configuration && $0.seed == planned.seed }
            switch latest?.status {
            case "completed"?: continue
            case "interrupted"? where latest?.checkpoint != nil: work.append(.resume(run: latest!.run, planned))
            case "running"?: say("sweep \(sweep.id): run \(latest!.run) (\(planned.configuration), seed \(planned.seed)) is running elsewhere; left alone")
            default: work.append(.start(planned))
            }
        }
        if processes.isMain {
            say("sweep \(sweep.id): \(sweep.task), \(plan.runs.count) runs (\(plan.configurations.count) configurations x \(plan.seeds.count) seeds); "
                + "\(plan.runs.count - work.count) done, \(work.count) to go, \(jobs) at a time"
                + (processes.isDistributed ? " on each of \(processes.size) processes" : ""))
        }
        // Every process has read the sweep's runs before any starts one; then each takes its share.
        do { try processes.barrier() } catch { return (.failed, "\(error)") }
        if processes.isDistributed { work = work.enumerated().filter { $0.offset % processes.size == processes.rank }.map(\.element) }
        let who = processes.isDistributed ? "process \(processes.rank) on \(ProcessInfo.processInfo.hostName): " : ""
        let logs = "\(outputRoot)/sweep-\(sweep.id)"
        try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let threads = max(1, ProcessGroup.threads / jobs)
        let stop = StopFlag()
        let signals = SignalWatcher(flag: stop, stopMessage: "stopping every run after its step (Ctrl-C again to quit at once)")
        var active: [(pid: pid_t, work: Work, log: String)] = []
        var failures: [String] = [], forwarded = false
        var pending = work[...]
        while !pending.isEmpty || !active.isEmpty {
            while active.count < jobs, !stop.isSet, let next = pending.popFirst() {
                let (planned, arguments): (SweepPlan.PlannedRun, [String])
                switch next {
                case .start(let p):
                    planned = p
                    arguments = sweep.arguments + p.arguments + ["--output-dir", outputRoot, "--sweep", String(sweep.id), "--sweep-configuration", p.configuration]
                case .resume(let run, let p):
                    planned = p
                    arguments = ["resume", String(run), "--db", database.path]
                }
                let log = "\(logs)/\(planned.configuration.replacingOccurrences(of: " ", with: "_"))-seed\(planned.seed).log"
                do {
                    let pid = try ChildProcess.spawn(CommandLine.executable, arguments, log: log, environment: ["BERTKIT_THREADS": String(threads)])
                    active.append((pid, next, log))
                    say("\(who)sweep \(sweep.id): \(planned.configuration), seed \(planned.seed): \(describe(next)) (log \(log))")
                } catch {
                    failures.append("\(planned.configuration) seed \(planned.seed): \(error)")
                }
            }
            if stop.isSet && !forwarded {
                for child in active { kill(child.pid, SIGINT) }
                forwarded = true
            }
            usleep(100_000)
            active.removeAll { child in
                guard let status = ChildProcess.exitStatus(child.pid) else { return false }
                let planned: SweepPlan.PlannedRun = switch child.work { case .start(let p), .resume(_, let p): p }
                let run = (try? database.runs(ofSweep: sweep.id))?.last { $0.configuration == planned.configuration && $0.seed == planned.seed }
                let score = run.flatMap { try? database.bestMainMetric(of: $0.run) }
                let outcome = status == 0 ? "completed" + (score.map { ", best \(format($0))" } ?? "") : status == 130 ? "interrupted" : "failed (exit \(status))"
                say("\(who)sweep \(sweep.id): \(planned.configuration), seed \(planned.seed): run \(run.map { String($0.run) } ?? "?") \(outcome)")
                if status != 0 && status != 130 { failures.append("\(planned.configuration) seed \(planned.seed) (log \(child.log))") }
                return true
            }
        }
        withExtendedLifetime(signals) {}
        if stop.isSet { return (.interrupted, "stopped by a signal") }
        return failures.isEmpty ? (.completed, nil) : (.failed, "\(failures.count) run(s) failed: " + failures.joined(separator: "; "))
    }

    private func describe(_ work: Work) -> String {
        switch work {
        case .start: "starting"
        case .resume(let run, _): "resuming run \(run)"
        }
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
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
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

extension CommandLine {
    /// This program's own file, to start more of it.
    static var executable: String { Bundle.main.executablePath ?? CommandLine.arguments[0] }
}
