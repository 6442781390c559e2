import ArgumentParser
import BertKit
import Foundation
import Serving
import Synchronization

/// `finetune serve`: fine-tuned models and encoders behind HTTP, answering what `finetune predict` writes.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve fine-tuned models (and encoders, for embeddings) over HTTP on this machine.",
        discussion: """
            POST /predict {"inputs": "a text" | ["texts"] | [{"text": ..., "text_pair": ...}] | [{"question": ..., "context": ...}]} \
            answers a list of what `finetune predict` writes for each input; POST /embed {"inputs": ...} to an encoder without \
            a head answers [{"embedding": [...]}]. With several models, /models/NAME/predict and /models/NAME/embed; the \
            first model also answers the routes without a name. GET /health, /info (models, heads, labels, limits) and \
            /metrics (Prometheus). SIGTERM or Ctrl-C drains: no new connections, requests in flight finished, exit 0.
            """)

    @Option(help: "A model folder, or NAME=FOLDER; repeat for several models.") var model: [String]
    @Option(help: "Address to listen on (127.0.0.1: this machine only).") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed when listening).") var port = 8080
    @Option(help: "Number format of matrix products: fp32, bf16 or int8.") var precision: Precision = .float32
    @Option(help: "Largest request body in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "Most inputs in one request.") var maxInputs = 1024
    @Option(help: "Seconds to finish the requests in flight after SIGTERM.") var drainTimeout = 30.0

    func run() throws {
        let stop = StopFlag()
        let watcher = SignalWatcher(flag: stop, stopMessage: "draining: finishing the requests in flight (Ctrl-C again to quit at once)")
        defer { withExtendedLifetime(watcher) {} }
        if host != "127.0.0.1" && host != "localhost" {
            FileHandle.standardError.write(Data("warning: listening on \(host), not only this machine; anyone who reaches it can use the models\n".utf8))
        }
        let started = ContinuousClock.now
        var models: [(name: String, model: ModelServer.Model)] = []
        for entry in model {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let (name, folder) = parts.count == 2 ? (parts[0], parts[1]) : ((entry as NSString).lastPathComponent, entry)
            guard !models.contains(where: { $0.name == name }) else { throw ValidationError("two models are named \(name); use NAME=FOLDER") }
            models.append((name, try ModelServer.Model.load(folder: folder, precision: precision)))
        }
        var server = ModelServer(models: models)
        server.maxBodyBytes = maxBodyBytes
        server.maxInputs = maxInputs
        let loading = started.duration(to: .now)
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let (host, port, drain) = (host, port, Duration.milliseconds(Int64(drainTimeout * 1000)))
        let names = models.map(\.name)
        Task {
            let result = await Result {
                try await server.run(host: host, port: port, drainTimeout: drain, stop: stop) { bound in
                    let line = "serving \(names.joined(separator: ", ")) on http://\(host):\(bound) (loaded in \(loading.formatted(.units(allowed: [.seconds, .milliseconds]))))\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                }
            }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }?.get()
        print("stopped: every request in flight answered")
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
