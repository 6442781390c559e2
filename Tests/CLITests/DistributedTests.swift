import Foundation
import Testing
import BertKit

/// Open MPI's launcher, which scripts/setup installs.
let mpirunPath = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
/// Whether this process may make network namespaces (scripts/mpi/two_hosts).
let canMakeNetworkNamespaces = getuid() == 0 && ["/usr/sbin/ip", "/sbin/ip", "/bin/ip"].contains { FileManager.default.isExecutableFile(atPath: $0) }

/// Data parallelism as a user runs it: `mpirun -np 2 finetune ...` makes the run one process makes at the same
/// global batch (losses at every step and final weights within 1e-5, relative: only the order of the gradients'
/// summation differs), and its checkpoints resume on one process.
@Suite(.serialized) struct DistributedTests {
    static var mpirun: String? { mpirunPath }
    static let steps = 20

    /// mpirun with `arguments` after its own (as root too; more processes than cores allowed), not started yet.
    func mpirunProcess(_ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun!)
        process.arguments = ["--allow-run-as-root", "--oversubscribe"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: CommandLineTests.root)
        return process
    }

    /// `finetune` under `mpirun -np processes`, run to its end.
    func mpirun(_ processes: Int, _ arguments: [String]) throws -> CommandLineTests.Result {
        try runToEnd(mpirunProcess(["-np", "\(processes)", CommandLineTests.binary] + arguments))
    }

    /// Starts `process` and waits for its end: its status, output and errors.
    func runToEnd(_ process: Process) throws -> CommandLineTests.Result {
        let (out, err) = (Pipe(), Pipe())
        (process.standardOutput, process.standardError) = (out, err)
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile(), error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return .init(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                     error: String(decoding: error, as: UTF8.self))
    }

    /// scripts/mpi/two_hosts with `arguments`, not started yet.
    func twoHostsProcess(_ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLineTests.root + "/scripts/mpi/two_hosts")
        process.arguments = arguments
        return process
    }

    func arguments(_ task: String, in directory: String) -> [String] {
        ["--task", CommandLineTests.fixtures + "/tasks/\(task).json", "--model", CommandLineTests.fixtures + "/tiny-bert",
         "--db", directory + "/results.db", "--output-dir", directory + "/runs", "--max-steps", "\(Self.steps)",
         "--eval-steps", "10", "--batch-size", "8", "--max-length", "40", "--learning-rate", "1e-3",
         "--save-strategy", "steps", "--save-steps", "5", "--save-total-limit", "0", "--keep-checkpoints"]
    }

    func losses(_ directory: String) throws -> [Double] {
        try SQLiteDatabase(path: directory + "/results.db")
            .query("SELECT value FROM metrics WHERE split = 'train' AND name = 'loss' ORDER BY step").map { $0["value"]!.double! }
    }

    /// ‖a − b‖∞ / ‖b‖∞ over each tensor of two safetensors files, the largest.
    func largestDifference(_ a: String, _ b: String) throws -> Float {
        let (x, y) = (try SafeTensorsFile(path: a), try SafeTensorsFile(path: b))
        #expect(x.names == y.names)
        return try y.names.map { name in
            let (u, v) = (try x.floats(name), try y.floats(name))
            let scale = max(v.map(abs).max() ?? 0, .leastNormalMagnitude)
            return zip(u, v).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
        }.max() ?? 0
    }

    func relativeDifference(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).map { abs($0 - $1) / max(abs($1), 1e-12) }.max() ?? 0
    }

    @Test(.enabled(if: mpirunPath != nil, "mpirun is absent: scripts/setup installs Open MPI"),
          arguments: ["mrpc-slice", "ner-tiny", "pretrain-tiny"])
    func twoProcessesTrainAsOneProcessDoesAtTheSameGlobalBatch(_ task: String) throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let one = cli.directory + "/one", two = cli.directory + "/two"
        let alone = try cli.finetune(arguments(task, in: one))
        #expect(alone.status == 0, "\(alone.error)")
        let together = try mpirun(2, arguments(task, in: two))
        try #require(together.status == 0, "\(together.output)\n\(together.error)")
        #expect(together.output.contains("2 processes on 1 host"), "\(together.output)")

        // Dropout is on (the tiny model's 0.1): equal losses mean equal masks too.
        let (a, b) = (try losses(two), try losses(one))
        #expect(a.count == Self.steps && b.count == Self.steps)
        #expect(relativeDifference(a, b) < 1e-5, "losses on 2 processes \(a) against 1 \(b)")
        let checkpoint = "/runs/1-\(task)/checkpoints/checkpoint-\(Self.steps)/model.safetensors"
        #expect(try largestDifference(two + checkpoint, one + checkpoint) < 1e-5)

        let database = try SQLiteDatabase(path: two + "/results.db")
        let params = try database.query("SELECT key, value FROM params WHERE key IN ('processes', 'threads_per_process') ORDER BY key")
        #expect(params.map { $0["value"] } == [.text("2"), .text("1")], "2 processes of 1 thread each on this machine's cores")
        for name in ["step_seconds", "wait_seconds", "allreduce_seconds"] {
            #expect(try database.query("SELECT COUNT(*) AS n FROM metrics WHERE split = 'timing' AND name = '\(name)'")
                .first?["n"] == .integer(Int64(Self.steps)), "\(name)")
        }
        #expect(try database.query("SELECT status FROM runs").map { $0["status"] } == [.text("completed")])
    }

    /// A checkpoint does not depend on the number of processes: one saved at step 10 of a run on two resumes on
    /// one, and the run ends where the run on one process does.
    @Test(.enabled(if: mpirunPath != nil, "mpirun is absent: scripts/setup installs Open MPI"))
    func aCheckpointOfTwoProcessesResumesOnOne() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let one = cli.directory + "/one", resumed = cli.directory + "/resumed"
        #expect(try cli.finetune(arguments("mrpc-slice", in: one)).status == 0)
        let together = try mpirun(2, arguments("mrpc-slice", in: resumed))
        try #require(together.status == 0, "\(together.error)")
        // As the run on two processes stands when stopped after step 10: its later checkpoints not yet written.
        let checkpoints = resumed + "/runs/1-mrpc-slice/checkpoints"
        for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints) where Int(name.dropFirst(11))! > 10 {
            try FileManager.default.removeItem(atPath: checkpoints + "/" + name)
        }
        try SQLiteDatabase(path: resumed + "/results.db").execute("UPDATE runs SET status = 'interrupted'")

        let again = try cli.finetune(["resume", "1", "--db", resumed + "/results.db"])
        #expect(again.status == 0, "\(again.error)")
        #expect(again.output.contains("checkpoint-10"), "\(again.output)")
        let (a, b) = (try losses(resumed), try losses(one))
        #expect(a.count == Self.steps && relativeDifference(a, b) < 1e-5, "resumed \(a) against one process \(b)")
        let checkpoint = "/runs/1-mrpc-slice/checkpoints/checkpoint-\(Self.steps)/model.safetensors"
        #expect(try largestDifference(resumed + checkpoint, one + checkpoint) < 1e-5)
    }

    /// Two hosts joined by a network: two network namespaces on this machine and Open MPI over TCP between
    /// them (scripts/mpi/two_hosts sets them up and tears them down; it needs root, as CI runs).
    @Test(.enabled(if: mpirunPath != nil && canMakeNetworkNamespaces, "needs root, and ip (iproute2) and mpirun, which scripts/setup installs"))
    func twoHostsOverTCPTrainAsOneProcessDoes() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let one = cli.directory + "/one", two = cli.directory + "/two"
        #expect(try cli.finetune(arguments("mrpc-slice", in: one)).status == 0)
        let result = try runToEnd(twoHostsProcess(["--binary", CommandLineTests.binary] + arguments("mrpc-slice", in: two)))
        try #require(result.status == 0, "\(result.output)\n\(result.error)")
        #expect(result.output.contains("2 processes on 2 hosts (bertkit-h1, bertkit-h2)"), "\(result.output)")
        let (a, b) = (try losses(two), try losses(one))
        #expect(a.count == Self.steps && relativeDifference(a, b) < 1e-5, "two hosts \(a) against one process \(b)")
        let checkpoint = "/runs/1-mrpc-slice/checkpoints/checkpoint-\(Self.steps)/model.safetensors"
        #expect(try largestDifference(two + checkpoint, one + checkpoint) < 1e-5)
    }

    /// Tests/SumCheck, built beside the test runner: sums buffers across the shared window's chunks and checks them exactly.
    static let sumCheck = URL(fileURLWithPath: CommandLineTests.binary).deletingLastPathComponent().appendingPathComponent("sum-check").path

    /// Sums over three processes of one host, exactly, through the memory they share.
    @Test(.enabled(if: mpirunPath != nil, "mpirun is absent: scripts/setup installs Open MPI"))
    func sumsThroughSharedMemoryAreExact() throws {
        let result = try runToEnd(mpirunProcess(["-np", "3", Self.sumCheck]))
        #expect(result.status == 0, "\(result.output)\n\(result.error)")
        #expect(result.output.components(separatedBy: "of 3: sums exact, shared memory on its host: true").count - 1 == 3,
                "\(result.output)\n\(result.error)")
    }

    /// Sums over two hosts of two processes each, exactly: each host's two through shared memory, and each slice
    /// across the hosts over TCP (scripts/mpi/two_hosts; processes alternate between the hosts).
    @Test(.enabled(if: mpirunPath != nil && canMakeNetworkNamespaces, "needs root, and ip (iproute2) and mpirun, which scripts/setup installs"))
    func sumsOverTwoHostsOfTwoProcessesAreExact() throws {
        let result = try runToEnd(twoHostsProcess(["--binary", Self.sumCheck, "--per-host", "2"]))
        #expect(result.status == 0, "\(result.output)\n\(result.error)")
        #expect(result.output.components(separatedBy: "of 4: sums exact, shared memory on its host: true").count - 1 == 4,
                "\(result.output)\n\(result.error)")
    }

    /// A process that cannot load the model stops the job on every process: it names its error, process 0 names
    /// it as the one that failed, and the run is marked failed (mpirun's MPMD form gives process 1 a bad folder).
    @Test(.enabled(if: mpirunPath != nil, "mpirun is absent: scripts/setup installs Open MPI"))
    func aProcessThatCannotLoadTheModelFailsTheJob() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let common = ["--task", CommandLineTests.fixtures + "/tasks/mrpc-slice.json", "--db", cli.db,
                      "--output-dir", cli.directory + "/runs", "--max-steps", "4", "--max-length", "40"]
        let process = mpirunProcess(["-np", "1", CommandLineTests.binary] + common + ["--model", CommandLineTests.fixtures + "/tiny-bert",
                                     ":", "-np", "1", CommandLineTests.binary] + common + ["--model", cli.directory + "/missing"])
        let err = Pipe()
        (process.standardOutput, process.standardError) = (FileHandle.nullDevice, err)
        try process.run()
        let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(error.contains("error: process 1: \(cli.directory)/missing: model folder not found"), "\(error)")
        let run = try #require(try cli.runs().first)
        #expect(run["status"] == .text("failed"))
        #expect(run["error"].map { "\($0)" }?.contains("process 1 of the job could not load the task's data and model") == true, "\(run)")
    }

    /// `mpirun -np 2 finetune sweep`: the sweep's runs are spread over the two processes, each an ordinary run of
    /// its own (alone, not a job of two), and process 0 records the sweep.
    @Test(.enabled(if: mpirunPath != nil, "mpirun is absent: scripts/setup installs Open MPI"))
    func aSweepUnderMPISpreadsItsRunsOverTheProcesses() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let result = try mpirun(2, ["sweep", "--task", CommandLineTests.fixtures + "/tasks/mrpc-slice.json",
                                    "--model", CommandLineTests.fixtures + "/tiny-bert", "--db", cli.db,
                                    "--output-dir", cli.directory + "/runs", "--grid", "learning_rate=1e-3,5e-4", "--seeds", "1,2",
                                    "--max-steps", "4", "--max-length", "40"])
        #expect(result.status == 0, "\(result.output)\n\(result.error)")
        for process in 0..<2 {
            #expect(result.output.components(separatedBy: "process \(process) on").count - 1 == 4, "two runs started and ended by each: \(result.output)")
        }
        let database = try SQLiteDatabase(path: cli.db)
        #expect(try database.query("SELECT status FROM sweeps").map { $0["status"] } == [.text("completed")])
        #expect(try database.query("SELECT status FROM runs").map { $0["status"] } == Array(repeating: .text("completed"), count: 4))
        #expect(try database.query("SELECT COUNT(*) AS n FROM params WHERE key = 'processes'").first?["n"] == .integer(0),
                "each run trains alone")
    }

    /// `mpirun -np 2 finetune predict`: the two processes share the batches and process 0 writes what one process
    /// writes (token classification and question answering, long inputs cut into several windows).
    @Test(.enabled(if: mpirunPath != nil, "mpirun is absent: scripts/setup installs Open MPI"),
          arguments: [("token-classifier", "texts.jsonl", ["--window-overlap", "8"]), ("question-answering", "questions.jsonl", [])])
    func predictionUnderMPIWritesWhatOneProcessWrites(_ model: String, _ input: String, _ extra: [String]) throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let fixtures = CommandLineTests.fixtures + "/pipelines/"
        func arguments(_ output: String) -> [String] {
            ["predict", "--model", fixtures + model, "--input", fixtures + input, "--output", cli.directory + "/" + output,
             "--batch-size", "2"] + extra
        }
        #expect(try cli.finetune(arguments("one.jsonl")).status == 0)
        let together = try mpirun(2, arguments("two.jsonl"))
        #expect(together.status == 0, "\(together.error)")
        let one = try String(contentsOfFile: cli.directory + "/one.jsonl", encoding: .utf8)
        #expect(!one.isEmpty)
        #expect(try String(contentsOfFile: cli.directory + "/two.jsonl", encoding: .utf8) == one)
        #expect(together.output.components(separatedBy: "wrote ").count == 2, "process 0 alone reports: \(together.output)")
    }

    /// A process that stops answering (here: stopped with SIGSTOP, as a host gone from the network looks to the
    /// others) ends the job after --mpi-timeout seconds, not never: process 0 marks the run interrupted, naming why.
    @Test(.enabled(if: mpirunPath != nil, "mpirun is absent: scripts/setup installs Open MPI"))
    func aProcessThatStopsAnsweringEndsTheJobAfterTheTimeout() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let process = mpirunProcess(["-np", "2", CommandLineTests.binary] + arguments("mrpc-slice", in: cli.directory)
                                    + ["--max-steps", "1000000", "--mpi-timeout", "3"])
        (process.standardOutput, process.standardError) = (FileHandle.nullDevice, FileHandle.nullDevice)
        try process.run()
        // Process 1 is the newest finetune started from this binary with this output folder: stop it once training runs.
        var stepped = false
        while process.isRunning && !stepped {
            usleep(50_000)
            stepped = ((try? SQLiteDatabase(path: cli.db).query("SELECT COUNT(*) AS n FROM metrics WHERE split = 'train'")
                .first?["n"]?.double) ?? nil).map { $0 > 3 } ?? false
        }
        let pids = try String(contentsOfFile: "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children", encoding: .utf8)
            .split(separator: " ").compactMap { pid_t($0) }
        let workers = pids.filter { (try? String(contentsOfFile: "/proc/\($0)/environ", encoding: .utf8))?.contains("OMPI_COMM_WORLD_RANK=1") == true }
        try #require(workers.count == 1, "process 1 among \(pids)")
        kill(workers[0], SIGSTOP)
        let started = Date()
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(started) < 60, "the job ended after the timeout")
        #expect(process.terminationStatus != 0)
        let run = try #require(try cli.runs().first)
        #expect(run["status"] == .text("interrupted"))
        #expect(run["error"].map { "\($0)" }?.contains("no answer from the other processes of the job for 3 s") == true, "\(run)")
    }
}
