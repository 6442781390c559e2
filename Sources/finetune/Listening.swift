import Foundation
import Synchronization

/// What the commands that listen on a port (`serve`, `dashboard`) share: a warning when they are reachable from
/// other machines, and their async server run to its end from the command's synchronous `run()`.
enum Listening {
    /// Warns on standard error unless `host` is this machine only; `exposed` says what others could reach.
    static func warnUnlessLocal(_ host: String, exposing exposed: String) {
        guard host != "127.0.0.1" && host != "localhost" else { return }
        FileHandle.standardError.write(Data("warning: listening on \(host), not only this machine; anyone who reaches it can \(exposed)\n".utf8))
    }

    /// Runs `server` in a task and waits here until it returns, rethrowing its error.
    static func run(_ server: @escaping @Sendable () async throws -> Void) throws {
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let result: Result<Void, any Error>
            do { result = .success(try await server()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }?.get()
    }
}
