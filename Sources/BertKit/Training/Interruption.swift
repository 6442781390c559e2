import Foundation

/// A flag one thread sets and another polls: the trainer checks it between steps. Whoever owns the work
/// may leave last words (`whenQuitting`) for a quit that cannot wait for the step to end.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var lastWords: (@Sendable () -> Void)?
    private var firstWords: (@Sendable () -> Void)?

    public init() {}

    public var isSet: Bool { lock.withLock { value } }

    /// Requests the stop; the first request runs what `whenStopping` registered.
    public func set() {
        let words: (@Sendable () -> Void)? = lock.withLock {
            defer { value = true }
            return value ? nil : firstWords
        }
        words?()
    }

    /// What to do at once when a stop is requested, before the current step ends: a run on several processes
    /// marks itself interrupted, because an MPI launcher that passes on the signal ends its processes soon after.
    public func whenStopping(_ body: @escaping @Sendable () -> Void) { lock.withLock { firstWords = body } }

    /// What to do before the process quits at once (a second Ctrl-C): mark the run, say.
    public func whenQuitting(_ body: @escaping @Sendable () -> Void) { lock.withLock { lastWords = body } }

    /// Runs the last words and ends the process with status 130, without running exit handlers or
    /// destructors while the main thread is still in a step (which could crash). If the process is already
    /// ending (`exit`), it waits for that instead.
    public func quitNow() -> Never {
        lock.withLock { lastWords }?()
        _exit(130)
    }

    /// Ends the process with `code` once its work is recorded, in step with `quitNow`: the lock is never given
    /// back, so a second Ctrl-C arriving now waits instead of running its last words while the process is torn
    /// down (exit handlers tearing Foundation down under another thread that uses it corrupted the heap). No
    /// exit handler runs; standard output is flushed first.
    public func exit(_ code: Int32) -> Never {
        lock.lock()
        fflush(nil)  // every output stream
        _exit(code)
    }
}

/// Turns Ctrl-C (SIGINT) and SIGTERM into a request to stop after the current step; a second one quits at once
/// (exit status 130). Keep it alive for as long as the run.
///
/// The signals are taken synchronously: `takeSignals()` blocks them in every thread from the start of the
/// program (before any other thread exists, so that every thread inherits the block) and one thread of their
/// own waits for them with `sigwait`. No handler ever interrupts another thread's work: an asynchronous one,
/// arriving while a GEMM thread was inside `free`, corrupted the heap (seen with two Ctrl-C 0-60 ms apart).
/// While no watcher is alive, a signal ends the process at once, as by default.
public final class SignalWatcher {
    private struct Watch {
        let flag: StopFlag
        let message: String
    }
    nonisolated(unsafe) private static var current: Watch?
    private static let lock = NSLock()
    private static let started = NSLock()
    nonisolated(unsafe) private static var waiting = false

    /// Blocks SIGINT and SIGTERM in this thread and every thread it starts from now on, and starts the thread
    /// that waits for them. Call it first thing in `main`; a watcher calls it too, for programs that did not.
    public static func takeSignals() {
        started.lock()
        defer { started.unlock() }
        guard !waiting else { return }
        waiting = true
        var set = signals
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let thread = Thread {
            var set = signals
            while true {
                var number: Int32 = 0
                guard sigwait(&set, &number) == 0 else { continue }
                guard let watch = lock.withLock({ current }) else { _exit(128 + number) }
                if watch.flag.isSet {
                    FileHandle.standardError.write(Data("\nquitting now\n".utf8))
                    watch.flag.quitNow()
                }
                watch.flag.set()
                FileHandle.standardError.write(Data("\n\(watch.message)\n".utf8))
            }
        }
        thread.name = "bertkit-signals"
        thread.start()
    }

    private static var signals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
    }

    public init(flag: StopFlag, stopMessage: String = "stopping after this step (Ctrl-C again to quit at once)") {
        Self.takeSignals()
        Self.lock.withLock { Self.current = Watch(flag: flag, message: stopMessage) }
    }

    deinit {
        Self.lock.withLock { Self.current = nil }
    }
}
