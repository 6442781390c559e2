import Foundation

/// Leaves a trace of a crash where the next command finds it: while a run is armed, a fatal signal (a failed
/// check, a bad access, abort) writes `signal N` to a marker file in the run's folder, then lets the signal go on
/// to the handler that was there before (the Swift runtime's backtrace). The next process that opens results.db
/// records the run as `failed` with that signal (`ResultsDatabase.reapAbandonedRuns`) instead of merely
/// `interrupted`. The handler only calls `open`, `write`, `close`, `sigaction` and `raise`, which a signal
/// handler may call (and `signal`); everything it reads is prepared when the run is armed.
public enum CrashMarker {
    /// The marker's name in a run's folder.
    public static let fileName = ".crashed"
    static let signals: [Int32] = [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT]

    nonisolated(unsafe) private static var path: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
    nonisolated(unsafe) private static var installed = false

    /// From now on a fatal signal leaves its marker in `folder`.
    public static func arm(folder: String) {
        let old = path
        path = strdup(folder + "/" + fileName)
        free(old)
        guard !installed else { return }
        installed = true
        for number in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { number, _, _ in
                if let path = CrashMarker.path {
                    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    if descriptor >= 0 {
                        var text: (CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar) =
                            (0x73, 0x69, 0x67, 0x6e, 0x61, 0x6c, 0x20, 0x30 + CChar(number / 10), 0x30 + CChar(number % 10), 0x0a)
                        _ = withUnsafeBytes(of: &text) { write(descriptor, $0.baseAddress, 10) }
                        close(descriptor)
                    }
                }
                // The handler there before (the runtime's backtrace), then the default action: the process ends,
                // whether the signal came from a fault or from `kill`.
                sigaction(number, CrashMarker.previous + Int(number), nil)
                raise(number)
                signal(number, SIG_DFL)
                raise(number)
            }
            action.sa_flags = SA_SIGINFO | SA_NODEFER
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, previous + Int(number))
        }
    }

    /// The run ended in an orderly way: no marker is left for it.
    public static func disarm() {
        let old = path
        path = nil
        free(old)
    }

    /// The signal a run's marker records, if its folder has one.
    public static func recordedSignal(in folder: String) -> Int32? {
        guard let text = try? String(contentsOfFile: folder + "/" + fileName, encoding: .utf8),
              text.hasPrefix("signal ") else { return nil }
        return Int32(text.dropFirst("signal ".count).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
