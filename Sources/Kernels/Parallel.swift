import Foundation
import Synchronization

/// The one thread pool of the toolkit: the calling thread plus one persistent worker per other core. The BLAS
/// library runs single-threaded inside it (see `Gemm.swift`): two pools would spin against each other after
/// each GEMM and halve the speed of the next elementwise kernel (`../shared/reference/platform.md`).
///
/// `DispatchQueue.concurrentPerform` allocates several blocks per call; a loop here allocates one 32-byte
/// object, the box in which `withoutActuallyEscaping` hands the caller's closure to the worker threads.
/// A loop started while another runs (from inside a loop body, or from a second thread) runs on its calling
/// thread alone.
public enum Parallel {
    /// Number of threads a parallel loop is spread over.
    public static let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    static let pool = WorkerPool(extraThreads: workers - 1)

    /// Loops that have run on more than one thread since the process started.
    public static var parallelLoops: Int { pool.loops.load(ordering: .relaxed) }

    /// Calls `body(i)` for every `i` in `0..<count`, spread over the cores. Iterations must be independent.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || workers == 1 || !pool.run(count, perThread: false, body) {
            for i in 0..<count { body(i) }
        }
    }

    /// Splits `0..<count` into one contiguous range per thread (fewer when a range would be shorter than
    /// `minimumChunk`) and calls `body` on each range in parallel.
    public static func forRanges(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = max(1, min(workers, count / max(1, minimumChunk)))
        if chunks == 1 {
            if count > 0 { body(0..<count) }
            return
        }
        forEach(chunks) { c in body(count * c / chunks ..< count * (c + 1) / chunks) }
    }

    /// Calls `body(thread)` once on each thread of the pool (0 is the caller), for per-thread setup.
    /// Returns false, calling nothing, when the pool is busy.
    @discardableResult
    public static func onEveryThread(_ body: (Int) -> Void) -> Bool {
        if workers == 1 { body(0); return true }
        return pool.run(workers, perThread: true, body)
    }
}

/// Worker threads that sleep on a condition variable between loops and take iterations from a shared counter.
final class WorkerPool: @unchecked Sendable {
    private let extraThreads: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let busy = Atomic<Bool>(false)
    private let next = Atomic<Int>(0)
    let loops = Atomic<Int>(0)
    // Guarded by `mutex`.
    private var generation = 0
    private var running = 0
    private var count = 0
    private var perThread = false
    /// The running loop's body. Not an Optional: a function stored in a generic container is kept at maximal
    /// abstraction, which needs a heap-allocated reabstraction thunk on every loop.
    private var body: (Int) -> Void = WorkerPool.idle
    private static let idle: @Sendable (Int) -> Void = { _ in }

    init(extraThreads: Int) {
        self.extraThreads = extraThreads
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(finished, nil)
        for id in 0..<extraThreads {
            let context = Unmanaged.passRetained(WorkerStart(pool: self, id: id + 1)).toOpaque()
            var thread = pthread_t()
            pthread_create(&thread, nil, { context in
                let start = Unmanaged<WorkerStart>.fromOpaque(context!).takeRetainedValue()
                start.pool.work(id: start.id)
                return nil
            }, context)
            pthread_detach(thread)
        }
    }

    /// Runs a loop on all threads; false when another loop holds the pool.
    func run(_ count: Int, perThread: Bool, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        loops.wrappingAdd(1, ordering: .relaxed)
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(mutex)
            self.body = body
            self.count = count
            self.perThread = perThread
            next.store(perThread ? 1 : 0, ordering: .relaxed)
            running = extraThreads
            generation += 1
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)

            if perThread {
                body(0)
            } else {
                takeIterations(body, count)
            }

            pthread_mutex_lock(mutex)
            while running > 0 { pthread_cond_wait(finished, mutex) }
            self.body = WorkerPool.idle
            pthread_mutex_unlock(mutex)
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    private func takeIterations(_ body: (Int) -> Void, _ count: Int) {
        while true {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    private func work(id: Int) {
        var seen = 0
        while true {
            pthread_mutex_lock(mutex)
            while generation == seen { pthread_cond_wait(wake, mutex) }
            seen = generation
            do {
                // This reference to the caller's closure must be gone before the caller is told the loop is
                // done: the closure only lives for the caller's `withoutActuallyEscaping`.
                let body = self.body, count = self.count, perThread = self.perThread
                pthread_mutex_unlock(mutex)
                if perThread {
                    body(id)
                } else {
                    takeIterations(body, count)
                }
            }

            pthread_mutex_lock(mutex)
            running -= 1
            if running == 0 { pthread_cond_signal(finished) }
            pthread_mutex_unlock(mutex)
        }
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
