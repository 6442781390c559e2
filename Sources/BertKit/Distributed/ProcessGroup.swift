import CMPI
import Foundation
import Kernels
import Synchronization

/// The processes that train one model together, or this process alone.
///
/// `finetune` started by `mpirun`, `mpiexec` or `srun` finds from its environment that a launcher started it as
/// one of several processes (`isOneOfSeveral`), and joins them through MPI; started alone it never initialises
/// MPI. Every process of a group holds the whole model and the whole data set, and computes its share of each
/// batch (`BatchShare`); the group sums their gradients (`sum`), so that every process takes the same optimizer
/// step. Process 0 (`isMain`) alone writes results.db, checkpoints, exports and the progress display.
///
/// Communication fails with an error, not by ending the process: the run is then marked interrupted, naming its
/// latest checkpoint. A collective that gets no answer for `timeout` seconds (a host gone from the network,
/// which TCP would wait for for many minutes) ends the process the same way (`whenUnresponsive`).
public final class ProcessGroup: @unchecked Sendable {
    /// This process's index in the group, from 0.
    public let rank: Int
    /// The number of processes.
    public let size: Int
    private let usesMPI: Bool
    /// Sums gradients through memory shared by the processes of each host, when hosts run several.
    private var sharedMemory: SharedMemorySum?

    public var isMain: Bool { rank == 0 }
    /// Whether `sum` goes through memory shared by the processes of each host (`SharedMemorySum`).
    public var sumsThroughSharedMemory: Bool { sharedMemory != nil }
    public var isDistributed: Bool { size > 1 }

    private init(rank: Int, size: Int, usesMPI: Bool) {
        self.rank = rank
        self.size = size
        self.usesMPI = usesMPI
    }

    // MARK: The watchdog

    /// Seconds a collective may wait for the other processes before this one gives up (`finetune --mpi-timeout`;
    /// 0: no limit). It covers the slowest process's step and process 0's checkpoint writes, so it is generous
    /// by default.
    public var timeout: Double {
        get { Double(timeoutMilliseconds.load(ordering: .relaxed)) / 1000 }
        set { timeoutMilliseconds.store(Int64(newValue * 1000), ordering: .relaxed) }
    }
    private let timeoutMilliseconds = Atomic<Int64>(600_000)
    /// When the collective in progress started (uptime in milliseconds), or 0.
    private let waitingSince = Atomic<Int64>(0)
    private let lastWords = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// What to do, on another thread, before the process ends because a collective got no answer in time:
    /// mark the run interrupted, say. The process then exits with status 1, and the launcher ends the others.
    public func whenUnresponsive(_ body: @escaping @Sendable (String) -> Void) { lastWords.withLock { $0 = body } }

    private static func milliseconds() -> Int64 { Int64(ProcessInfo.processInfo.systemUptime * 1000) }

    /// Runs a collective under the watchdog.
    private func waiting<T>(_ body: () throws -> T) rethrows -> T {
        waitingSince.store(Self.milliseconds(), ordering: .relaxed)
        defer { waitingSince.store(0, ordering: .relaxed) }
        return try body()
    }

    private func startWatchdog() {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 1)
                let since = waitingSince.load(ordering: .relaxed), limit = timeoutMilliseconds.load(ordering: .relaxed)
                guard since != 0, limit > 0, Self.milliseconds() - since > limit else { continue }
                let message = "process \(rank): no answer from the other processes of the job for \(limit / 1000) s "
                    + "(a host unreachable, or a process stopped); ending the job"
                FileHandle.standardError.write(Data("error: \(message)\n".utf8))
                lastWords.withLock { $0 }?(message)
                _exit(1)
            }
        }
        thread.name = "bertkit-mpi-watchdog"
        thread.start()
    }

    /// This process alone.
    public static let single = ProcessGroup(rank: 0, size: 1, usesMPI: false)

    /// The group this process was started in: all the processes of an MPI job when a launcher started it,
    /// else `single`. MPI is initialised on first use, once per process.
    public static let current: ProcessGroup = {
        guard isOneOfSeveral(ProcessInfo.processInfo.environment) else { return .single }
        do { return try joinMPI() } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
    }()

    /// Whether a launcher started this process as one of several, from the variables that Open MPI
    /// (`OMPI_COMM_WORLD_SIZE`), MPICH-style launchers (`PMI_SIZE`) and PMIx (`srun --mpi=pmix`; it does not
    /// always give the size, then Slurm's `SLURM_NTASKS` does) give their processes.
    package static func isOneOfSeveral(_ environment: [String: String]) -> Bool {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
            if let size = environment[name].flatMap(Int.init) { return size > 1 }
        }
        guard environment["PMIX_RANK"] != nil else { return false }
        return (environment["SLURM_NTASKS"].flatMap(Int.init) ?? 2) > 1  // without a size, MPI_Comm_size will tell
    }

    private static func joinMPI() throws -> ProcessGroup {
        // Open MPI picks its allreduce algorithm from message size and process count; for gradients (tens of MB)
        // the ring, which sends each byte once in each direction, was 2.4 times faster than its pick on two
        // processes (BENCHMARKS.md). It reads MCA parameters from the environment at initialisation; a user's
        // own choice stands.
        let environment = ProcessInfo.processInfo.environment
        if environment["OMPI_MCA_coll_tuned_allreduce_algorithm"] == nil {
            setenv("OMPI_MCA_coll_tuned_use_dynamic_rules", "1", 1)
            setenv("OMPI_MCA_coll_tuned_allreduce_algorithm", "4", 1)
        }
        var provided: Int32 = 0
        // Only the main thread calls MPI; the worker pool never does.
        try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided), "MPI_Init_thread")
        try check(MPI_Comm_set_errhandler(bertkit_mpi_comm_world(), bertkit_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(bertkit_mpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(bertkit_mpi_comm_world(), &size), "MPI_Comm_size")
        let group = ProcessGroup(rank: Int(rank), size: Int(size), usesMPI: true)
        // BERTKIT_MPI_SHARED_MEMORY=0 sums with MPI_Allreduce alone: for comparison, or where shared windows fail.
        if environment["BERTKIT_MPI_SHARED_MEMORY"] != "0" {
            group.sharedMemory = try SharedMemorySum.make(world: bertkit_mpi_comm_world(), rank: Int(rank), size: Int(size))
        }
        group.startWatchdog()
        atexit { ProcessGroup.finalize() }
        return group
    }

    /// Leaves MPI cleanly at exit (when the process joined it and nothing failed).
    private static func finalize() {
        var initialized: Int32 = 0, finalized: Int32 = 0
        MPI_Initialized(&initialized)
        MPI_Finalized(&finalized)
        if initialized != 0 && finalized == 0 { MPI_Finalize() }
    }

    // MARK: Collective operations. Every process of the group must call each of them, in the same order.

    /// Replaces `buffer` on every process by its sum over the processes.
    public func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        guard usesMPI else { return }
        if let sharedMemory { return try waiting { try sharedMemory.sum(buffer, count: count) } }
        var done = 0
        // MPI counts are 32-bit: a buffer larger than that (BERT-large's gradients are not) goes in pieces.
        while done < count {
            let piece = min(count - done, Int(Int32.max))
            try waiting {
                try Self.check(MPI_Allreduce(bertkit_mpi_in_place(), buffer + done, Int32(piece), bertkit_mpi_float(),
                                             bertkit_mpi_sum(), bertkit_mpi_comm_world()), "MPI_Allreduce (gradients)")
            }
            done += piece
        }
    }

    /// The sum of `values` over the processes, element by element.
    public func sum(_ values: [Double]) throws -> [Double] {
        guard usesMPI else { return values }
        var result = values
        try waiting {
            try result.withUnsafeMutableBufferPointer { buffer in
                try Self.check(MPI_Allreduce(bertkit_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), bertkit_mpi_double(),
                                             bertkit_mpi_sum(), bertkit_mpi_comm_world()), "MPI_Allreduce")
            }
        }
        return result
    }

    /// Whether `flag` is true on any process.
    public func any(_ flag: Bool) throws -> Bool {
        guard usesMPI else { return flag }
        var value: Int32 = flag ? 1 : 0
        try waiting {
            try Self.check(MPI_Allreduce(bertkit_mpi_in_place(), &value, 1, bertkit_mpi_int(), bertkit_mpi_max(),
                                         bertkit_mpi_comm_world()), "MPI_Allreduce")
        }
        return value != 0
    }

    /// Every process's `bytes`, in rank order, on every process.
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        guard usesMPI else { return [bytes] }
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(bytes.count)
        try waiting {
            try Self.check(MPI_Allgather(&mine, 1, bertkit_mpi_int(), &counts, 1, bertkit_mpi_int(), bertkit_mpi_comm_world()),
                           "MPI_Allgather")
        }
        var offsets = [Int32](repeating: 0, count: size)
        for r in 1..<size { offsets[r] = offsets[r - 1] + counts[r - 1] }
        var all = [UInt8](repeating: 0, count: Int(offsets[size - 1] + counts[size - 1]))
        try waiting {
            try bytes.withUnsafeBytes { send in
                try Self.check(MPI_Allgatherv(send.baseAddress, mine, bertkit_mpi_byte(), &all, counts, offsets, bertkit_mpi_byte(),
                                              bertkit_mpi_comm_world()), "MPI_Allgatherv")
            }
        }
        return (0..<size).map { r in Array(all[Int(offsets[r])..<Int(offsets[r] + counts[r])]) }
    }

    /// `body(i)` for every `i` in `0..<count`, on every process: each computes the indices `rank`, `rank + size`,
    /// … (evaluation batches, which length-sorting makes alike in cost) and the group shares the results.
    public func gather(_ count: Int, _ body: (Int) throws -> [Double]) throws -> [[Double]] {
        guard usesMPI else { return try (0..<count).map(body) }
        // Each process's results as one message: for each of its indices, the result's length, then the result.
        var message: [Double] = []
        for i in stride(from: rank, to: count, by: size) {
            let result = try body(i)
            message.append(Double(result.count))
            message += result
        }
        let parts = try allGather(message.withUnsafeBytes { Array($0) })
        var results = [[Double]](repeating: [], count: count)
        for (r, part) in parts.enumerated() {
            let values = part.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            var at = 0
            for i in stride(from: r, to: count, by: size) {
                let n = Int(values[at])
                results[i] = Array(values[(at + 1)..<(at + 1 + n)])
                at += 1 + n
            }
        }
        return results
    }

    /// Before a process exits with an error: after a failure every process knows of (`failedTogether`), waits
    /// until all have come here (process 0 after recording it); otherwise returns at once.
    public func parting() {
        if failedTogether { try? barrier() }
    }

    /// Waits until every process has called it.
    public func barrier() throws {
        guard usesMPI else { return }
        try waiting { try Self.check(MPI_Barrier(bertkit_mpi_comm_world()), "MPI_Barrier") }
    }

    /// Threads this process computes with: the cores it is given, or `BERTKIT_THREADS` (`Parallel.workers`).
    public static var threads: Int { Parallel.workers }

    /// The variables by which a launcher tells a process that it is one of a job's: a process this one starts to
    /// run alone (a sweep's run) must not inherit them.
    public static func isLauncherVariable(_ name: String) -> Bool {
        ["OMPI_", "PMIX_", "PMI_", "OPAL_", "PRTE_"].contains { name.hasPrefix($0) }
    }

    /// Whether a step that every process took together (`agree`) failed somewhere: then every process knows,
    /// and each waits at `parting()` before it exits, so that process 0 records the failure before the
    /// launcher, seeing another process end with an error, stops it.
    public private(set) var failedTogether = false

    /// Goes on only if every process succeeded at `what` (reading the data, loading the model): rethrows this
    /// process's error, or throws one naming the processes that failed, on every process alike.
    public func agree<T>(that what: String, _ body: () throws -> T) throws -> T {
        let result = Result(catching: body)
        var failed = false
        if case .failure = result { failed = true }
        let all = try allGather([failed ? 1 : 0])
        failedTogether = all.contains([1])
        if case .failure(let error) = result { throw error }
        let others = all.indices.filter { all[$0] == [1] }
        guard others.isEmpty else { throw ProcessGroupError.failedElsewhere(processes: others, what: what) }
        return try result.get()
    }

    /// The name of the host each process runs on, in rank order.
    public func hostNames() throws -> [String] {
        let name = ProcessInfo.processInfo.hostName
        return try allGather(Array(name.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    static func check(_ code: Int32, _ operation: String) throws {
        guard code != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        let message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw ProcessGroupError.communication(operation: operation, message: message)
    }
}

/// Why the processes of a group could not go on together.
public enum ProcessGroupError: Error, CustomStringConvertible, LocalizedError {
    /// A collective operation failed: another process of the job died, or its host became unreachable.
    case communication(operation: String, message: String)
    /// Other processes could not do what this one did (read the data, load the model); each prints its error.
    case failedElsewhere(processes: [Int], what: String)

    public var description: String {
        switch self {
        case .communication(let operation, let message):
            "\(operation) failed (\(message)): another process of the job ended or cannot be reached"
        case .failedElsewhere(let processes, let what):
            "process\(processes.count == 1 ? "" : "es") \(processes.map(String.init).joined(separator: ", ")) of the job could not \(what) (\(processes.count == 1 ? "its error is" : "their errors are") printed above)"
        }
    }
    public var errorDescription: String? { description }
}
