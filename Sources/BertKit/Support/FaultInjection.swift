import Foundation

/// Faults injected into the toolkit's own writes, so that tests can fail each of them in turn: with
/// `BERTKIT_FAIL_WRITE=N` in the environment, the N-th write, sync, rename or record of a run (counted from 1 in
/// this process, at every point `fail(_:_:)` is called) fails as a failing disk makes it fail, with EIO. Without
/// the variable nothing is counted and nothing fails.
public enum FaultInjection {
    private static let failing: Int? = ProcessInfo.processInfo.environment["BERTKIT_FAIL_WRITE"].flatMap(Int.init)
    private static let lock = NSLock()
    nonisolated(unsafe) private static var count = 0

    /// Throws the injected fault when this point is the one to fail; `what` says what was being done, `path` where.
    static func point(_ what: String, _ path: String) throws {
        guard let failing else { return }
        let n = lock.withLock {
            count += 1
            return count
        }
        if n == failing {
            throw CheckpointError(file: path, "cannot \(what) (\(SystemError.text(EIO)); fault \(n) injected by BERTKIT_FAIL_WRITE)")
        }
    }
}
