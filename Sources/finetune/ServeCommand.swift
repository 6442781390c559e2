import ArgumentParser
import BertKit
import Foundation
import Serving

/// `finetune serve`: fine-tuned models and encoders behind HTTP, answering what `finetune predict` writes.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve fine-tuned models (and encoders, for embeddings) over HTTP on this machine.",
        discussion: """
            POST /predict {"inputs": "a text" | ["texts"] | [{"text": ..., "text_pair": ...}] | [{"question": ..., "context": ...}], \
            "truncate": false} answers a list of what `finetune predict` writes for each input; POST /embed {"inputs": ...} to an \
            encoder without a head answers [{"embedding": [...]}]. With several models, /models/NAME/predict and \
            /models/NAME/embed; the first model also answers the routes without a name. GET /health, /info (models, heads, \
            labels, limits), /metrics (Prometheus) and /openapi.json. The texts of concurrent requests share forward passes \
            (up to --max-batch-tokens tokens, in turns so that a large request cannot starve a small one). SIGTERM or Ctrl-C \
            drains: no new connections, requests in flight finished, exit 0.
            """)

    @Option(help: "A model folder, or NAME=FOLDER; repeat for several models.") var model: [String]
    @Option(help: "Address to listen on (127.0.0.1: this machine only).") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed when listening).") var port = 8080
    @Option(help: "Number format of matrix products: fp32, bf16 or int8.") var precision: Precision = .float32
    @Option(help: "Sequences per forward pass at most (the activation buffers hold this many of the model's length).") var batchSize = 32
    @Option(help: "Tokens per forward pass at most (default: batch-size sequences of the model's length).") var maxBatchTokens: Int?
    @Option(help: "Largest request body in bytes (413 beyond).") var maxBodyBytes = 1 << 20
    @Option(help: "Most inputs in one request (413 beyond).") var maxInputs = 1024
    @Option(help: "Most tokens of one input, its texts together (413 beyond, unless the request says \"truncate\": true).")
    var maxInputLength = 4096
    @Option(help: "Prediction requests answered at once, waiting ones included (429 with Retry-After beyond).") var maxConcurrentRequests = 512
    @Option(help: "Seconds from a request's arrival to its answer (408 while its body is still arriving, 503 after).") var requestTimeout = 30.0
    @Option(help: "Seconds a connection may stay without a complete request before it is closed.") var idleTimeout = 60.0
    @Option(help: "Seconds to finish the requests in flight after SIGTERM.") var drainTimeout = 30.0
    @Flag(help: "Log one line per request (model, route, status, inputs, seconds) to standard error.") var logRequests = false

    func validate() throws {
        for (name, value) in [("--max-input-length", maxInputLength), ("--max-concurrent-requests", maxConcurrentRequests),
                              ("--max-inputs", maxInputs), ("--max-body-bytes", maxBodyBytes), ("--batch-size", batchSize)] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        for (name, value) in [("--request-timeout", requestTimeout), ("--idle-timeout", idleTimeout)] where !(value > 0) {
            throw ValidationError("\(name) must be more than 0 seconds")
        }
    }

    func run() throws {
        let stop = StopFlag()
        let watcher = SignalWatcher(flag: stop, stopMessage: "draining: finishing the requests in flight (Ctrl-C again to quit at once)")
        defer { withExtendedLifetime(watcher) {} }
        Listening.warnUnlessLocal(host, exposing: "use the models")
        let started = ContinuousClock.now, residentBefore = ProcessMemory.residentMegabytes
        let metrics = ServerMetrics()
        var options = Hyperparameters()
        options[PredictionOptions.batchSize] = batchSize
        var models: [(name: String, model: ModelServer.Model)] = []
        for entry in model {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let (name, folder) = parts.count == 2 ? (parts[0], parts[1]) : ((entry as NSString).lastPathComponent, entry)
            guard !models.contains(where: { $0.name == name }) else { throw ValidationError("two models are named \(name); use NAME=FOLDER") }
            let batching = metrics.batching(model: name, maxTokens: maxBatchTokens)
            models.append((name, try ModelServer.Model.load(folder: folder, precision: precision, options: options, batching: batching)))
        }
        var server = ModelServer(models: models, metrics: metrics)
        server.limits.maxBodyBytes = maxBodyBytes
        server.limits.maxInputs = maxInputs
        server.limits.maxInputLength = InputLengthLimit(maxTokens: maxInputLength)
        server.limits.maxConcurrentRequests = maxConcurrentRequests
        server.limits.requestTimeout = .milliseconds(Int64(requestTimeout * 1000))
        server.limits.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        server.logRequests = logRequests
        let loading = started.duration(to: .now)
        let memory = String(format: "%.0f MB resident, %.0f MB of it the models", ProcessMemory.residentMegabytes, ProcessMemory.residentMegabytes - residentBefore)
        let (host, port, drain) = (host, port, Duration.milliseconds(Int64(drainTimeout * 1000)))
        let names = models.map(\.name)
        let ready = server
        try Listening.run {
            try await ready.run(host: host, port: port, drainTimeout: drain, stop: stop) { bound in
                let took = loading.formatted(.units(allowed: [.seconds, .milliseconds]))
                let line = "serving \(names.joined(separator: ", ")) on http://\(host):\(bound) (loaded in \(took), \(memory))\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        }
        print("stopped: every request in flight answered")
    }
}
