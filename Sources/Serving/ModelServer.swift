import BertKit
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// An HTTP server in front of fine-tuned models and encoders (`finetune serve`), answering what `finetune predict`
/// writes for the same input: every route goes through `FineTunedModel.predictionLines` or
/// `SentenceEncoder.predictionLines`, so the bytes of each result are the command's.
///
/// Routes (JSON in and out; errors are `{"error": "..."}` with a 4xx or 5xx status naming what was wrong; the
/// whole contract is `GET /openapi.json`):
/// - `POST /predict` (and `/models/NAME/predict`): `{"inputs": X, "truncate": false}` where X is a text, a list of
///   texts, or a list of records as `finetune predict` reads JSONL (`{"text", "text_pair"}`,
///   `{"question", "context"}`); the answer is the list of results, one per input, in order.
/// - `POST /embed` (and `/models/NAME/embed`): the same inputs (texts) to an encoder without a head: the list of
///   `{"embedding": [...]}`.
/// - `GET /health`, `GET /info` (models, heads, labels, limits), `GET /metrics` (Prometheus), `GET /openapi.json`.
///
/// Texts of concurrent requests share forward passes: each model batches its callers (`Batching`, under
/// `maxBatchTokens`). Requests beyond `maxConcurrentRequests` get 429 at once; a request's deadline is
/// `requestTimeout` from its arrival; a client that disconnects takes its waiting texts out of the queue.
public struct ModelServer: Sendable {
    /// A model as the server holds it.
    public enum Model: Sendable {
        case fineTuned(FineTunedModel)
        case encoder(SentenceEncoder)

        /// Loads `folder`: an encoder without a head embeds, any other model predicts with its head.
        public static func load(folder: String, precision: Precision, options: Hyperparameters = Hyperparameters(),
                                batching: Batching = Batching()) throws -> Model {
            let config = try BertCheckpoint(directory: folder).rawConfig()
            return SentenceEncoder.embeds(config)
                ? .encoder(try SentenceEncoder(folder: folder, precision: precision, options: options, batching: batching))
                : .fineTuned(try FineTunedModel(folder: folder, precision: precision, options: options, batching: batching))
        }

        var tokenizer: Tokenizer {
            switch self {
            case let .fineTuned(m): m.tokenizer
            case let .encoder(e): e.tokenizer
            }
        }

        var info: [String: Any] {
            switch self {
            case let .fineTuned(m):
                return ["folder": m.folder, "head": m.head.rawValue, "labels": m.labels,
                        "precision": m.options[PredictionOptions.precision].rawValue]
            case let .encoder(e):
                return ["folder": e.folder, "head": "sentence-embedding", "pooling": e.pooling.map(\.rawValue),
                        "normalize": e.normalize, "dimension": e.dimension, "max_length": e.maxLength]
            }
        }
    }

    /// What the server accepts; beyond each limit a request gets a 4xx (or 429) answer naming it.
    public struct Limits: Sendable {
        /// The largest request body, in bytes (413).
        public var maxBodyBytes = 1 << 20
        /// The most inputs in one request (413).
        public var maxInputs = 1024
        /// The most tokens of one input (413, or cut when the request says `"truncate": true`).
        public var maxInputLength = InputLengthLimit(maxTokens: 4096)
        /// Prediction requests answered at once, waiting ones included (429 with Retry-After beyond).
        public var maxConcurrentRequests = 512
        /// From a request's arrival to its answer, body included (408 while the body is still coming, 503 after).
        public var requestTimeout = Duration.seconds(30)
        /// A connection with no request for this long is closed (so is one whose request head trickles in).
        public var idleTimeout = Duration.seconds(60)

        public init() {}
    }

    /// The models by name; the first is also served at the routes without a name.
    public let models: [(name: String, model: Model)]
    public var limits = Limits()
    /// One log line per answered request (route, status, inputs, seconds), at `info`.
    public var logRequests = false
    let metrics: ServerMetrics
    let admission = Admission()
    let connections = Connections()

    /// A server of `models`, whose `metrics` must be the ones their `Batching.report` feeds (`ServerMetrics.batching`).
    public init(models: [(name: String, model: Model)], metrics: ServerMetrics) {
        precondition(!models.isEmpty, "a server needs a model")
        self.models = models
        self.metrics = metrics
    }

    /// Serves on `host`:`port` (0: any free port) until `stop` is set (SIGTERM or Ctrl-C, through the toolkit's
    /// `SignalWatcher`): then it stops accepting connections, finishes the requests in flight within `drainTimeout`,
    /// and returns. `listening` gets the port once the server accepts connections.
    public func run(host: String, port: Int, drainTimeout: Duration, stop: StopFlag,
                    listening: @escaping @Sendable (Int) -> Void) async throws {
        var logger = Logger(label: "bertkit.serve")
        logger.logLevel = logRequests ? .info : .warning
        let connections = self.connections
        let (seconds, attoseconds) = limits.idleTimeout.components
        let http = HTTP1Channel.Configuration(additionalChannelHandlers: [connections.watcher()],
                                              idleTimeout: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        let app = Application(router: router(), server: .http1(configuration: http),
                              configuration: .init(address: .hostname(host, port: port)),
                              onServerRunning: { channel in listening(channel.localAddress?.port ?? port) }, logger: logger)
        var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [], logger: logger)
        configuration.maximumGracefulShutdownDuration = drainTimeout
        let group = ServiceGroup(configuration: configuration)
        stop.whenStopping { Task { await group.triggerGracefulShutdown() } }
        try await group.run()
    }

    /// The router of every route.
    func router() -> Router<ServeRequestContext> {
        let router = Router(context: ServeRequestContext.self)
        router.add(middleware: JSONErrors())
        router.get("health") { _, _ in Self.json(["status": "ok"]) }
        router.get("info") { _, _ in
            Self.json(["models": models.map { ["name": $0.name].merging($0.model.info) { a, _ in a } },
                       "limits": ["max_body_bytes": limits.maxBodyBytes, "max_inputs": limits.maxInputs,
                                  "max_input_length": limits.maxInputLength.maxTokens,
                                  "max_concurrent_requests": limits.maxConcurrentRequests,
                                  "request_timeout_seconds": Double(limits.requestTimeout.components.seconds)]])
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        router.get("openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPI.document)))
        }
        for route in ["predict", "embed"] {
            router.post(RouterPath(stringLiteral: route)) { request, context in
                await answer(request, context: context, route: route, model: models[0])
            }
            router.post(RouterPath(stringLiteral: "models/:name/" + route)) { request, context in
                let name = context.parameters.get("name") ?? ""
                guard let model = models.first(where: { $0.name == name }) else {
                    return Self.error(.notFound, "no model named '\(name)'; this server has \(models.map(\.name).joined(separator: ", "))")
                }
                return await answer(request, context: context, route: route, model: model)
            }
        }
        return router
    }

    /// Admits, reads, checks and answers one prediction request, counting and (if asked) logging it.
    func answer(_ request: Request, context: ServeRequestContext, route: String, model: (name: String, model: Model)) async -> Response {
        let started = ContinuousClock.now
        var inputCount = 0
        let response: Response
        let admitted = admission.enter(limit: limits.maxConcurrentRequests)
        defer { if admitted { admission.leave() } }
        if !admitted {
            response = Self.error(.tooManyRequests, "the server is answering \(limits.maxConcurrentRequests) requests (--max-concurrent-requests); retry shortly",
                                  headers: [.retryAfter: "1"])
        } else {
            metrics.inFlight.increment()
            let deadline = started + limits.requestTimeout
            do {
                let body = try await Self.collect(request.body, upTo: limits.maxBodyBytes, by: deadline)
                let (records, truncate) = try Self.inputs(Data(buffer: body), limit: limits.maxInputs)
                inputCount = records.count
                let within = try limits.maxInputLength.apply(to: records, tokenizer: model.model.tokenizer, truncate: truncate)
                let texts = Records(value: within)
                let lines = try await whileConnected(context) { try await Self.run(texts.value, route: route, on: model.model, deadline: deadline) }
                metrics.texts.increment(by: Int64(records.count))
                metrics.requestInputs.record(Double(records.count))
                response = Response(status: .ok, headers: [.contentType: "application/json"],
                                    body: .init(byteBuffer: ByteBuffer(string: "[" + lines.joined(separator: ",") + "]")))
            } catch let problem as RequestProblem {
                response = Self.error(problem.status, problem.message, headers: problem.headers)
            } catch let tooLong as InputTooLong {
                response = Self.error(.contentTooLarge, tooLong.description)
            } catch QueueError.deadlinePassed {
                response = Self.error(.serviceUnavailable, "the model did not get to this request within \(limits.requestTimeout) (--request-timeout); retry later",
                                      headers: [.retryAfter: "1"])
            } catch is QueueError, is CancellationError {
                response = Self.error(.init(code: 499, reasonPhrase: "Client Closed Request"), "the client went away")
            } catch is NIOTooManyBytesError {
                response = Self.error(.contentTooLarge, "the request body is larger than \(limits.maxBodyBytes) bytes (--max-body-bytes)")
            } catch let error as HTTPError where error.status == .contentTooLarge {
                response = Self.error(.contentTooLarge, "the request body is larger than \(limits.maxBodyBytes) bytes (--max-body-bytes)")
            } catch {
                response = Self.error(.unprocessableContent, "\(error)")
            }
            metrics.inFlight.decrement()
        }
        let seconds = started.duration(to: .now)
        metrics.count(model: model.name, route: route, status: Int(response.status.code), seconds: seconds)
        if logRequests {
            context.logger.info("request", metadata: ["model": "\(model.name)", "route": "\(route)", "status": "\(response.status.code)",
                                                      "inputs": "\(inputCount)", "seconds": "\(Self.seconds(seconds))"])
        }
        return response
    }

    /// Runs `work`, cancelled if the request's client goes away meanwhile.
    func whileConnected<T: Sendable>(_ context: ServeRequestContext, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let connection = connections.connection(of: context.channel) else { return try await work() }
        defer { connection.clearActions() }
        let task = Task { try await work() }
        connection.whenGone { task.cancel() }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// The request body, up to `limit` bytes, read by `deadline` (408 otherwise: a client trickling bytes).
    static func collect(_ body: RequestBody, upTo limit: Int, by deadline: ContinuousClock.Instant) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await body.collect(upTo: limit) }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let body = try await group.next()! else {
                throw RequestProblem(.requestTimeout, "the request body did not arrive within the request timeout (--request-timeout)")
            }
            return body
        }
    }

    /// The inputs of a request body, `{"inputs": ..., "truncate": bool}`, and whether to truncate.
    static func inputs(_ body: Data, limit: Int) throws -> ([[String: Any]], truncate: Bool) {
        guard let object = try? JSONSerialization.jsonObject(with: body) else {
            throw RequestProblem(.badRequest, "the body is not JSON (expected {\"inputs\": ...})")
        }
        guard let fields = object as? [String: Any] else { throw RequestProblem(.badRequest, "expected a JSON object with \"inputs\"") }
        if let unknown = fields.keys.sorted().first(where: { $0 != "inputs" && $0 != "truncate" }) {
            throw RequestProblem(.badRequest, "unknown field '\(unknown)' (a request has \"inputs\" and optionally \"truncate\")")
        }
        var truncate = false
        if fields["truncate"] != nil {
            // JSONSerialization reads 1 and true alike; the decoder tells them apart.
            struct Flag: Decodable { let truncate: Bool }
            guard let flag = try? JSONDecoder().decode(Flag.self, from: body) else {
                throw RequestProblem(.badRequest, "'truncate' must be true or false")
            }
            truncate = flag.truncate
        }
        let list: [Any]
        switch fields["inputs"] {
        case nil: throw RequestProblem(.badRequest, "missing field 'inputs'")
        case let text as String: list = [text]
        case let items as [Any]: list = items
        case let record as [String: Any]: list = [record]
        default: throw RequestProblem(.badRequest, "'inputs' must be a text, a list of texts or a list of records")
        }
        guard !list.isEmpty else { throw RequestProblem(.badRequest, "'inputs' is empty") }
        guard list.count <= limit else {
            throw RequestProblem(.contentTooLarge, "'inputs' has \(list.count) items; at most \(limit) per request (--max-inputs)")
        }
        let records = try list.enumerated().map { index, item -> [String: Any] in
            if let text = item as? String { return ["text": text] }
            if let record = item as? [String: Any], record.values.allSatisfy({ $0 is String }) { return record }
            throw RequestProblem(.badRequest, "inputs[\(index)] must be a text or an object of texts")
        }
        return (records, truncate)
    }

    /// The model's lines for the records.
    static func run(_ inputs: [[String: Any]], route: String, on model: Model, deadline: ContinuousClock.Instant) async throws -> [String] {
        switch (route, model) {
        case let ("predict", .fineTuned(m)):
            return try await m.predictionLines(inputs, deadline: deadline)
        case let ("embed", .encoder(e)):
            let texts = try inputs.enumerated().map { index, record in
                guard let text = record["text"] as? String, record.count == 1 else {
                    throw RequestProblem(.badRequest, "inputs[\(index)]: /embed takes texts")
                }
                return text
            }
            return try await e.predictionLines(texts, deadline: deadline)
        case ("predict", .encoder): throw RequestProblem(.badRequest, "this model is an encoder without a head: POST /embed")
        default: throw RequestProblem(.badRequest, "this model has a head: POST /predict")
        }
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(["error": message], status: status, headers: headers)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (s, atto) = duration.components
        return Double(s) + Double(atto) * 1e-18
    }
}

/// Errors the router raises (an unknown route, a wrong method) as the JSON errors every route answers.
struct JSONErrors<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let what = error.status == .notFound ? "no route \(request.method) \(request.uri.path); see GET /openapi.json" : "\(error.status)"
            return ModelServer.error(error.status, what)
        }
    }
}

/// A request the server refuses, with the status and the message it answers.
struct RequestProblem: Error {
    let status: HTTPResponse.Status
    let message: String
    var headers: HTTPFields = [:]
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// JSON records handed to the task that runs them (JSONSerialization's values are not marked Sendable; these are
/// strings, only read).
struct Records: @unchecked Sendable { let value: [[String: Any]] }

/// The prediction requests being answered, against `Limits.maxConcurrentRequests`.
final class Admission: Sendable {
    private let count = Atomic<Int>(0)

    /// Counts a request in if fewer than `limit` are; false (and nothing counted) otherwise.
    func enter(limit: Int) -> Bool {
        if count.add(1, ordering: .relaxed).newValue <= limit { return true }
        count.subtract(1, ordering: .relaxed)
        return false
    }

    func leave() { count.subtract(1, ordering: .relaxed) }
}
