import BertKit
import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// An HTTP server in front of fine-tuned models and encoders (`finetune serve`), answering what `finetune predict`
/// writes for the same input: every route goes through `FineTunedModel.predictionLines` or
/// `SentenceEncoder.predictionLines`, so the bytes of each result are the command's.
///
/// Routes (JSON in and out; errors are `{"error": "..."}` with a 4xx status naming what was wrong):
/// - `POST /predict` (and `/models/NAME/predict`): `{"inputs": X}` where X is a text, a list of texts, or a list of
///   records as `finetune predict` reads JSONL (`{"text", "text_pair"}`, `{"question", "context"}`); the answer is
///   the list of results, one per input, in order.
/// - `POST /embed` (and `/models/NAME/embed`): `{"inputs": text or [texts]}` to an encoder without a head: the list
///   of `{"embedding": [...]}`.
/// - `GET /health`: 200 once every model is loaded and its weights packed.
/// - `GET /info`: each model's folder, head, labels and precision, and the server's limits.
/// - `GET /metrics`: Prometheus' text format: requests by route and status, latency, texts and batch sizes.
public struct ModelServer: Sendable {
    /// A model as the server holds it.
    public enum Model: Sendable {
        case fineTuned(FineTunedModel)
        case encoder(SentenceEncoder)

        /// Loads `folder`: an encoder without a head embeds, any other model predicts with its head.
        public static func load(folder: String, precision: Precision) throws -> Model {
            let config = try BertCheckpoint(directory: folder).rawConfig()
            return SentenceEncoder.embeds(config)
                ? .encoder(try SentenceEncoder(folder: folder, precision: precision))
                : .fineTuned(try FineTunedModel(folder: folder, precision: precision))
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

    /// The models by name; the first is also served at the routes without a name.
    public let models: [(name: String, model: Model)]
    /// The largest request body, in bytes (a larger one gets 413).
    public var maxBodyBytes = 1 << 20
    /// The most inputs in one request (more gets 413).
    public var maxInputs = 1024
    let metrics = ServerMetrics()

    public init(models: [(name: String, model: Model)]) {
        precondition(!models.isEmpty, "a server needs a model")
        self.models = models
    }

    /// Serves on `host`:`port` (0: any free port) until `stop` is set (SIGTERM or Ctrl-C, through the toolkit's
    /// `SignalWatcher`): then it stops accepting connections, finishes the requests in flight within `drainTimeout`,
    /// and returns. `listening` gets the port once the server accepts connections.
    public func run(host: String, port: Int, drainTimeout: Duration, stop: StopFlag,
                    listening: @escaping @Sendable (Int) -> Void) async throws {
        let logger = Logger(label: "bertkit.serve")
        let app = Application(router: router(), configuration: .init(address: .hostname(host, port: port)),
                              onServerRunning: { channel in listening(channel.localAddress?.port ?? port) }, logger: logger)
        var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [], logger: logger)
        configuration.maximumGracefulShutdownDuration = drainTimeout
        let group = ServiceGroup(configuration: configuration)
        stop.whenStopping { Task { await group.triggerGracefulShutdown() } }
        try await group.run()
    }

    /// The router of every route.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrors())
        router.get("health") { _, _ in Self.json(["status": "ok"]) }
        router.get("info") { _, _ in
            Self.json(["models": models.map { ["name": $0.name].merging($0.model.info) { a, _ in a } },
                       "limits": ["max_body_bytes": maxBodyBytes, "max_inputs": maxInputs]])
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.registry.emitToString())))
        }
        for route in ["predict", "embed"] {
            router.post(RouterPath(stringLiteral: route)) { request, _ in
                await answer(request, route: route, model: models[0].model)
            }
            router.post(RouterPath(stringLiteral: "models/:name/" + route)) { request, context in
                let name = context.parameters.get("name") ?? ""
                guard let model = models.first(where: { $0.name == name })?.model else {
                    return Self.error(.notFound, "no model named '\(name)'; this server has \(models.map(\.name).joined(separator: ", "))")
                }
                return await answer(request, route: route, model: model)
            }
        }
        return router
    }

    /// Reads, checks and answers one prediction request, counting it.
    func answer(_ request: Request, route: String, model: Model) async -> Response {
        let started = ContinuousClock.now
        let response: Response
        do {
            let body = try await request.body.collect(upTo: maxBodyBytes)
            let inputs = try Self.inputs(Data(buffer: body), limit: maxInputs)
            let lines = try await Self.run(inputs, route: route, on: model)
            metrics.texts.increment(by: Int64(inputs.count))
            metrics.batchSizes.record(Double(inputs.count))
            response = Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: "[" + lines.joined(separator: ",") + "]")))
        } catch let problem as RequestProblem {
            response = Self.error(problem.status, problem.message)
        } catch is NIOTooManyBytesError {
            response = Self.error(.contentTooLarge, "the request body is larger than \(maxBodyBytes) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            response = Self.error(.contentTooLarge, "the request body is larger than \(maxBodyBytes) bytes")
        } catch {
            response = Self.error(.unprocessableContent, "\(error)")
        }
        metrics.count(route: route, status: Int(response.status.code), seconds: started.duration(to: .now))
        return response
    }

    /// The inputs of a request body: `{"inputs": ...}` with a text, a list of texts, or a list of records.
    static func inputs(_ body: Data, limit: Int) throws -> [[String: Any]] {
        guard let object = try? JSONSerialization.jsonObject(with: body) else {
            throw RequestProblem(.badRequest, "the body is not JSON (expected {\"inputs\": ...})")
        }
        guard let fields = object as? [String: Any] else { throw RequestProblem(.badRequest, "expected a JSON object with \"inputs\"") }
        if let unknown = fields.keys.sorted().first(where: { $0 != "inputs" }) {
            throw RequestProblem(.badRequest, "unknown field '\(unknown)' (a request has \"inputs\")")
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
        guard list.count <= limit else { throw RequestProblem(.contentTooLarge, "'inputs' has \(list.count) items; at most \(limit) per request") }
        return try list.enumerated().map { index, item in
            if let text = item as? String { return ["text": text] }
            if let record = item as? [String: Any], record.values.allSatisfy({ $0 is String }) { return record }
            throw RequestProblem(.badRequest, "inputs[\(index)] must be a text or an object of texts")
        }
    }

    /// Runs the model on a thread of its own (a prediction is blocking work on every core, not for the event loop).
    static func run(_ inputs: [[String: Any]], route: String, on model: Model) async throws -> [String] {
        let records = UncheckedRecords(value: inputs)
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    switch (route, model) {
                    case let ("predict", .fineTuned(m)): return try m.predictionLines(records.value)
                    case let ("embed", .encoder(e)):
                        let texts = try records.value.enumerated().map { index, record in
                            guard let text = record["text"] as? String, record.count == 1 else {
                                throw RequestProblem(.badRequest, "inputs[\(index)]: /embed takes texts")
                            }
                            return text
                        }
                        return try e.predictionLines(texts)
                    case ("predict", .encoder): throw RequestProblem(.badRequest, "this model is an encoder without a head: POST /embed")
                    default: throw RequestProblem(.badRequest, "this model has a head: POST /predict")
                    }
                })
            }.start()
        }
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response { json(["error": message], status: status) }
}

/// Errors the router raises (an unknown route, a wrong method) as the JSON errors every route answers.
struct JSONErrors<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let what = error.status == .notFound ? "no route \(request.method) \(request.uri.path); see GET /info" : "\(error.status)"
            return ModelServer.error(error.status, what)
        }
    }
}

/// A request the server refuses, with the status and the message it answers.
struct RequestProblem: Error {
    let status: HTTPResponse.Status
    let message: String
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// JSON records handed to the model's thread (JSONSerialization's values are not marked Sendable; these are only
/// strings and are read by one thread at a time).
struct UncheckedRecords: @unchecked Sendable { let value: [[String: Any]] }

/// What `/metrics` reports.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let texts: Counter
    let batchSizes: ValueHistogram
    static var requests: MetricNameDescriptor { MetricNameDescriptor(namespace: "bertkit", metricName: "requests", unitName: "total",
                                               helpText: "Requests by route and status.") }
    static var latency: MetricNameDescriptor { MetricNameDescriptor(namespace: "bertkit", metricName: "request", unitName: "seconds",
                                              helpText: "Request latency, body read to answer.") }

    init() {
        texts = registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "bertkit", metricName: "texts", unitName: "total",
                                                                      helpText: "Texts (inputs) predicted or embedded."), labels: [])
        batchSizes = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(namespace: "bertkit", metricName: "request_inputs", unitName: "count", helpText: "Inputs per request."),
            labels: [], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
    }

    func count(route: String, status: Int, seconds: Duration) {
        registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("status", String(status))]).increment()
        let (s, atto) = seconds.components
        registry.makeValueHistogram(descriptor: Self.latency, labels: [("route", route)],
                                    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
            .record(Double(s) + Double(atto) * 1e-18)
    }
}
