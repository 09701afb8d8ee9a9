import HerdGRPC
import Metrics
import Prometheus

/// The server's metrics: swift-metrics instruments on a Prometheus registry that `/metrics` renders.
///
/// - `herd_http_requests_total{route, status}`: requests answered, by route and HTTP status.
/// - `herd_http_request_duration_seconds{route}`: latency histogram per route.
/// - `herd_recommend_stage_duration_seconds{stage}`: per-stage histograms of recommend calls
///   (recall, features, preprocess, ranking, top_k, total — Friesian's timers).
/// - `herd_recommend_answers_total{source}`: answers by source (ranked, recall, popular).
/// - `herd_grpc_requests_total{service, method, code}`: gRPC calls ended, by status code (`OK`,
///   `INVALID_ARGUMENT`, …); `herd_grpc_request_duration_seconds{service, method}`: their latency
///   histogram (both from `MetricsInterceptor`).
///
/// NOTE: the factory is passed to each instrument instead of bootstrapping `MetricsSystem`
/// globally: a process (a test run) may start several servers, and each keeps its own registry.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
        ]
        factory = f
    }

    func request(route: String, status: Int, seconds: Double) {
        Counter(label: "herd_http_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory).increment()
        Metrics.Timer(label: "herd_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    func grpc(service: String, method: String, code: String, seconds: Double) {
        Counter(label: "herd_grpc_requests_total", dimensions: [("service", service), ("method", method), ("code", code)], factory: factory).increment()
        Metrics.Timer(label: "herd_grpc_request_duration_seconds", dimensions: [("service", service), ("method", method)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    /// The gRPC server's interceptor recording into these metrics.
    public var grpcInterceptor: MetricsInterceptor {
        MetricsInterceptor { [self] service, method, code, seconds in grpc(service: service, method: method, code: code, seconds: seconds) }
    }

    func stages(_ ms: [String: Double], source: String) {
        for (stage, v) in ms {
            Metrics.Timer(label: "herd_recommend_stage_duration_seconds", dimensions: [("stage", stage)], factory: factory)
                .recordNanoseconds(Int64(v * 1e6))
        }
        Counter(label: "herd_recommend_answers_total", dimensions: [("source", source)], factory: factory).increment()
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String { registry.emitToString() }
}
