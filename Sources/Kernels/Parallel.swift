import Foundation
import Synchronization

/// The one thread pool of the toolkit: the calling thread plus one persistent worker per other core. The GEMM
/// library runs single-threaded inside it (see `Gemm.swift`): two pools would spin against each other after
/// each GEMM and halve the speed of the next elementwise kernel (`../shared/reference/platform.md`).
///
/// A loop body is a small struct (a functor), not a closure: the pool hands the workers a pointer to the
/// caller's struct and its type, so starting a loop allocates nothing. A non-escaping closure cannot be
/// handed to another thread without `withoutActuallyEscaping`, which boxes it on the heap on every call, and
/// the training step must not allocate once warm.
///
/// A loop started while another runs (from inside a loop body, or from a second thread) runs on its calling
/// thread alone.
public enum Parallel {
    /// The body of `forEach`: called once per index.
    public protocol IndexBody {
        func callAsFunction(_ index: Int)
    }

    /// The body of `forRanges`: called once per contiguous range of indices.
    public protocol RangeBody {
        func callAsFunction(_ range: Range<Int>)
    }

    /// Number of threads a parallel loop is spread over: `BERTKIT_THREADS` when set (a sweep running several
    /// runs at once gives each its share of the cores; `finetune --threads` sets it), else one per core this
    /// process is given (`coresGiven`).
    public static let workers: Int = {
        let environment = ProcessInfo.processInfo.environment
        if let text = environment["BERTKIT_THREADS"], let count = Int(text), count >= 1 { return count }
        return coresGiven(environment)
    }()

    /// The cores this process may run on: those of its CPU affinity, which an MPI launcher narrows to each
    /// process's share (`mpirun --map-by`, `srun --cpu-bind`); when a launcher started several processes on
    /// this host without binding them, an equal share of the host's cores.
    static func coresGiven(_ environment: [String: String]) -> Int {
        let online = max(1, ProcessInfo.processInfo.activeProcessorCount)
        // The affinity mask as the kernel shows it, "Cpus_allowed:\tff,ffffffff" (glibc's sched_getaffinity is
        // not visible from Swift).
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let mask = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed:") }?.dropFirst("Cpus_allowed:".count)
        let allowed = mask.map { $0.reduce(0) { $0 + (Int(String($1), radix: 16)?.nonzeroBitCount ?? 0) } } ?? online
        let processesHere = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"].lazy
            .compactMap { environment[$0].flatMap(Int.init) }.first ?? 1
        if allowed >= online && processesHere > 1 { return max(1, online / processesHere) }
        return max(1, allowed)
    }

    static let pool = WorkerPool(extraThreads: workers - 1)

    /// Loops that have run on more than one thread since the process started.
    public static var parallelLoops: Int { pool.loops.load(ordering: .relaxed) }

    /// The pool thread running the caller, in `0..<workers` (0 for any thread outside the pool), so that a
    /// loop body can use per-thread scratch: `scratch + Parallel.threadIndex * scratchSize`.
    public static var threadIndex: Int { Int(bitPattern: pthread_getspecific(pool.threadKey)) }

    /// Calls `body(i)` for every `i` in `0..<count`, spread over the cores; each thread takes the next
    /// index when it finishes one, so uneven iterations balance. Iterations must be independent.
    public static func forEach<Body: IndexBody>(_ count: Int, _ body: Body) {
        if count <= 1 || workers == 1 || !pool.run(count, body) {
            for i in 0..<count { body(i) }
        }
    }

    /// Splits `0..<count` into one contiguous range per thread (fewer when a range would be shorter than
    /// `minimumChunk`) and calls `body` on each range in parallel.
    public static func forRanges<Body: RangeBody>(_ count: Int, minimumChunk: Int = 1, _ body: Body) {
        let chunks = max(1, min(workers, count / max(1, minimumChunk)))
        if chunks == 1 {
            if count > 0 { body(0..<count) }
            return
        }
        forEach(chunks, Chunks(body: body, count: count, chunks: chunks))
    }

    /// Chunk `c` of `chunks` equal parts of `0..<count`.
    private struct Chunks<Body: RangeBody>: IndexBody {
        let body: Body
        let count: Int
        let chunks: Int

        func callAsFunction(_ c: Int) {
            body(count * c / chunks ..< count * (c + 1) / chunks)
        }
    }
}

/// Worker threads that take iterations from a shared counter. Between loops a worker first spins for a short
/// while (`spinSeconds`) watching for the next loop, then sleeps on a condition variable; the caller likewise
/// spins before it sleeps waiting for the workers to finish. A training step is hundreds of short loops back to
/// back, and waking a sleeping thread on a virtual machine takes tens of microseconds, paid twice per loop;
/// spinning only while loops keep coming costs nothing, since the pool has one thread per core.
final class WorkerPool: @unchecked Sendable {
    /// How long a thread spins before it sleeps: longer than the gaps between the loops of a step, short
    /// enough that an idle pool gives its cores back at once.
    static let spinSeconds = 50e-6

    private let extraThreads: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let busy = Atomic<Bool>(false)
    private let next = Atomic<Int>(0)
    /// Bumped (releasing) once the running loop's fields below are set; workers watch it.
    private let generation = Atomic<Int>(0)
    /// Workers still working on the current loop.
    private let running = Atomic<Int>(0)
    let loops = Atomic<Int>(0)
    /// Holds each worker's index (1, 2, ...); threads outside the pool read 0.
    let threadKey: pthread_key_t
    // The running loop, as its body's address on the caller's stack and its type; written before
    // `generation` is bumped, read after it is seen.
    private var count = 0
    private var body: UnsafeRawPointer?
    private var bodyType: any Parallel.IndexBody.Type = Idle.self
    // Guarded by `mutex`: who sleeps, so that a wake-up is sent only to a sleeping thread.
    private var sleepingWorkers = 0
    private var callerSleeps = false

    init(extraThreads: Int) {
        self.extraThreads = extraThreads
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(finished, nil)
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        threadKey = key
        for id in stride(from: 1, through: extraThreads, by: 1) {
            // Each worker holds the pool for the life of the process.
            let context = Unmanaged.passRetained(WorkerStart(pool: self, id: id)).toOpaque()
            var thread = pthread_t()
            pthread_create(&thread, nil, { context in
                let start = Unmanaged<WorkerStart>.fromOpaque(context!).takeRetainedValue()
                pthread_setspecific(start.pool.threadKey, UnsafeRawPointer(bitPattern: start.id))
                Gemm.prepareThisThread()
                start.pool.work()
                return nil
            }, context)
            pthread_detach(thread)
        }
    }

    /// Runs a loop on all threads; false when another loop holds the pool.
    func run<Body: Parallel.IndexBody>(_ count: Int, _ body: Body) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        loops.wrappingAdd(1, ordering: .relaxed)
        withUnsafePointer(to: body) { pointer in
            self.body = UnsafeRawPointer(pointer)
            self.bodyType = Body.self
            self.count = count
            next.store(0, ordering: .relaxed)
            running.store(extraThreads, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .releasing)
            pthread_mutex_lock(mutex)
            if sleepingWorkers > 0 { pthread_cond_broadcast(wake) }
            pthread_mutex_unlock(mutex)

            takeIterations(count) { body($0) }

            // The workers must be done with `pointer` before this frame returns.
            if !spin(until: { running.load(ordering: .acquiring) == 0 }) {
                pthread_mutex_lock(mutex)
                callerSleeps = true
                while running.load(ordering: .acquiring) > 0 { pthread_cond_wait(finished, mutex) }
                callerSleeps = false
                pthread_mutex_unlock(mutex)
            }
            self.body = nil
            self.bodyType = Idle.self
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    @inline(__always)
    private func takeIterations(_ count: Int, _ body: (Int) -> Void) {
        while true {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    private func work() {
        var seen = 0
        while true {
            if !spin(until: { generation.load(ordering: .acquiring) != seen }) {
                pthread_mutex_lock(mutex)
                sleepingWorkers += 1
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
                sleepingWorkers -= 1
                pthread_mutex_unlock(mutex)
            }
            seen = generation.load(ordering: .acquiring)
            let body = self.body!, bodyType = self.bodyType, count = self.count

            takeIterations(count) { bodyType.call(at: body, index: $0) }

            if running.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(mutex)
                if callerSleeps { pthread_cond_signal(finished) }
                pthread_mutex_unlock(mutex)
            }
        }
    }

    /// Polls `condition` for up to `spinSeconds`; true once it holds.
    @inline(__always)
    private func spin(until condition: () -> Bool) -> Bool {
        if condition() { return true }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Self.spinSeconds * 1e9)
        while true {
            for _ in 0..<64 where condition() { return true }
            if DispatchTime.now().uptimeNanoseconds >= deadline { return condition() }
        }
    }

    private struct Idle: Parallel.IndexBody {
        func callAsFunction(_ index: Int) {}
    }
}

extension Parallel.IndexBody {
    /// Calls the body stored at `address`, whose type is `Self`.
    fileprivate static func call(at address: UnsafeRawPointer, index: Int) {
        address.assumingMemoryBound(to: Self.self).pointee(index)
    }
}

private final class WorkerStart {
    let pool: WorkerPool
    let id: Int

    init(pool: WorkerPool, id: Int) {
        self.pool = pool
        self.id = id
    }
}
