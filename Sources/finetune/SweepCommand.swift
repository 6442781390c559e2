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
        let job: SweepJob
        do {
            let database = try ResultsDatabase(path: databaseOptions.db)
            // Process 0 records the sweep (or takes it up again); the others read it once it has.
            let id = try processes.agree(that: "start the sweep") { processes.isMain ? try startOrResume(database) : 0 }
            let shared = try processes.allGather(withUnsafeBytes(of: id) { Array($0) })[0]
            let sweep = try database.sweep(shared.withUnsafeBytes { $0.load(as: Int64.self) })!
            job = try SweepJob(sweep: sweep, database: database, jobs: jobs, outputRoot: outputDir, executable: CommandLine.executable,
                               processes: processes)
        } catch { fail(error, processes: processes) }
        let stop = StopFlag()
        let signals = SignalWatcher(flag: stop, stopMessage: "stopping every run after its step (Ctrl-C again to quit at once)")
        let mine: SweepJob.Outcome
        do { mine = try job.run(stop: stop, log: say) } catch { mine = SweepJob.Outcome(status: .failed, error: "\(error)") }
        withExtendedLifetime(signals) {}
        // Every process's outcome, for process 0 to record.
        let outcome: SweepJob.Outcome
        do {
            outcome = SweepJob.combine(try processes.allGather(Array((mine.status.rawValue + "\n" + (mine.error ?? "")).utf8)).map {
                let text = String(decoding: $0, as: UTF8.self), error = String(text.drop { $0 != "\n" }.dropFirst())
                return SweepJob.Outcome(status: ResultsDatabase.Status(rawValue: String(text.prefix { $0 != "\n" })) ?? .failed,
                                        error: error.isEmpty ? nil : error)
            })
        } catch {
            outcome = SweepJob.combine([mine, SweepJob.Outcome(status: .failed, error: "the processes could not gather their outcomes: \(error)")])
        }
        guard processes.isMain else { Foundation.exit(mine.status == .completed ? 0 : mine.status == .interrupted ? 130 : 1) }
        do {
            try job.finish(outcome)
            try Sweeps.Show.printSummary(job.sweep.id, database: job.database)
        } catch { fail(error) }
        if outcome.status != .completed {
            say("sweep \(job.sweep.id) \(outcome.status.rawValue)\(outcome.error.map { ": \($0)" } ?? ""); `finetune sweep --resume \(job.sweep.id)` goes on")
            Foundation.exit(outcome.status == .interrupted ? 130 : 1)
        }
    }

    /// Records a new sweep, or marks `--resume`'s running again; its id.
    private func startOrResume(_ database: ResultsDatabase) throws -> Int64 {
        if let resume {
            try SweepJob.resume(resume, jobs: jobs, database: database)
            return resume
        }
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
        return try SweepJob.start(task: taskName, plan: plan, experiment: experiment, model: modelOptions.model, dataDirectory: dataDir,
                                  jobs: jobs, database: database)
    }
}

extension CommandLine {
    /// This program's own file, to start more of it.
    static var executable: String { Bundle.main.executablePath ?? CommandLine.arguments[0] }
}
