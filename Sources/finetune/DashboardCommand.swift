import ArgumentParser
import BertKit
import Dashboard
import Foundation

/// `finetune dashboard`: the runs of results.db in a browser, until Ctrl-C.
struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Look at runs in a browser: curves, comparisons with significance, sweeps, live runs (results.db, read-only).")

    @Option(help: "The SQLite results database, opened read-only.")
    var db: String = ProcessInfo.processInfo.environment["BERTKIT_DB"] ?? "results.db"
    @Option(help: "Address to listen on; only this machine by default.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8050

    func run() throws {
        let stop = StopFlag()
        let watcher = SignalWatcher(flag: stop, stopMessage: "stopping the dashboard")
        defer { withExtendedLifetime(watcher) {} }
        Listening.warnUnlessLocal(host, exposing: "read the runs of \(db)")
        let dashboard = try Dashboard(databasePath: db)
        let (host, port, db) = (host, port, db)
        try Listening.run {
            try await dashboard.run(host: host, port: port, stop: stop) { bound in
                FileHandle.standardOutput.write(Data("dashboard of \(db) on http://\(host):\(bound)\n".utf8))
            }
        }
    }
}
