import Foundation

/// A flag one thread sets and another polls: the trainer checks it between steps.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    public init() {}

    public var isSet: Bool { lock.withLock { value } }

    public func set() { lock.withLock { value = true } }
}

/// Turns Ctrl-C (SIGINT) and SIGTERM into a request to stop after the current step; a second one quits at once
/// (exit status 130). Keep it alive for as long as the run.
public final class SignalWatcher {
    private var sources: [DispatchSourceSignal] = []

    public init(flag: StopFlag) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if flag.isSet { exit(130) }
                flag.set()
                FileHandle.standardError.write(Data("\nstopping after this step (Ctrl-C again to quit at once)\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }
}
