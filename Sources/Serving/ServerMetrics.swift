import BertKit
import Prometheus

/// What `GET /metrics` reports, in Prometheus' text format. Tokens per second is `rate(bertkit_tokens_total[1m])`;
/// the batcher's state is `bertkit_queue_waiting` (sequences) and the batch histograms.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let texts: Counter
    let requestInputs: ValueHistogram
    let inFlight: Gauge

    public init() {
        texts = registry.makeCounter(descriptor: Self.name("texts", "total", "Texts (inputs) predicted or embedded."))
        requestInputs = registry.makeValueHistogram(descriptor: Self.name("request_inputs", "count", "Inputs per request."),
                                                    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
        inFlight = registry.makeGauge(descriptor: Self.name("requests_in_flight", "", "Prediction requests being answered, waiting ones included."))
    }

    /// The batching of the model `name`, reporting each forward pass here.
    public func batching(model name: String, maxTokens: Int?) -> Batching {
        let labels = [("model", name)]
        let waiting = registry.makeGauge(descriptor: Self.name("queue_waiting", "", "Sequences waiting for a forward pass."), labels: labels)
        let callers = registry.makeGauge(descriptor: Self.name("queue_callers", "", "Requests with sequences waiting or in the pass."), labels: labels)
        let tokens = registry.makeCounter(descriptor: Self.name("tokens", "total", "Tokens through the model (no padding)."), labels: labels)
        let sequences = registry.makeValueHistogram(descriptor: Self.name("batch_sequences", "count", "Sequences per forward pass."),
                                                    labels: labels, buckets: [1, 2, 4, 8, 16, 32, 64, 128])
        let batchTokens = registry.makeValueHistogram(descriptor: Self.name("batch_tokens", "count", "Tokens per forward pass."),
                                                      labels: labels, buckets: [16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384])
        let seconds = registry.makeValueHistogram(descriptor: Self.name("batch", "seconds", "Seconds per forward pass."),
                                                  labels: labels, buckets: Self.latencyBuckets)
        return Batching(maxTokens: maxTokens) { batch in
            waiting.set(Double(batch.waiting))
            callers.set(Double(batch.callers))
            tokens.increment(by: Int64(batch.tokens))
            sequences.record(Double(batch.sequences))
            batchTokens.record(Double(batch.tokens))
            seconds.record(batch.seconds)
        }
    }

    /// Counts an answered request.
    func count(model: String, route: String, status: Int, seconds: Duration) {
        registry.makeCounter(descriptor: Self.name("requests", "total", "Requests by model, route and status."),
                             labels: [("model", model), ("route", route), ("status", String(status))]).increment()
        registry.makeValueHistogram(descriptor: Self.name("request", "seconds", "Request latency, arrival to answer."),
                                    labels: [("model", model), ("route", route)], buckets: Self.latencyBuckets)
            .record(ModelServer.seconds(seconds))
    }

    func text() -> String { registry.emitToString() }

    static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    /// A metric's name; an empty unit adds no suffix.
    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "bertkit", metricName: metric, unitName: unit, helpText: help)
    }
}
