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
    /// destructors while the main thread is still in a step (which could crash).
    public func quitNow() -> Never {
        lock.withLock { lastWords }?()
        _exit(130)
    }
}

/// Turns Ctrl-C (SIGINT) and SIGTERM into a request to stop after the current step; a second one quits at once
/// (exit status 130). Keep it alive for as long as the run.
public final class SignalWatcher {
    private var sources: [DispatchSourceSignal] = []

    public init(flag: StopFlag, stopMessage: String = "stopping after this step (Ctrl-C again to quit at once)") {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                // Signals that arrive together are delivered as one event that counts them.
                if flag.isSet || source.data > 1 {
                    FileHandle.standardError.write(Data("\nquitting now\n".utf8))
                    flag.quitNow()
                }
                flag.set()
                FileHandle.standardError.write(Data("\n\(stopMessage)\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Cancelling releases each handler, which holds its source.
    deinit {
        for source in sources { source.cancel() }
    }
}
