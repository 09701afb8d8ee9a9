import Foundation
import HerdGRPC
import HerdServing
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
///
/// NOTE: instruments are made once per label set and kept (`InstrumentCache`): making one per
/// event went through the registry each time (name and label validation, label-set hashing, the
/// registry lock) — nine instruments per recommend request.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let requests = InstrumentCache<RouteStatus, (count: Metrics.Counter, latency: Metrics.Timer)>()
    private let grpcCalls = InstrumentCache<GRPCCall, (count: Metrics.Counter, latency: Metrics.Timer)>()
    private let answers = InstrumentCache<String, Metrics.Counter>()
    /// The recommend stages' timers by index in `StageTimings.names`.
    private let stageTimers = InstrumentCache<Int, Metrics.Timer>()

    private struct RouteStatus: Hashable {
        var route: String
        var status: Int
    }

    private struct GRPCCall: Hashable {
        var service: String, method: String, code: String
    }

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
        let (count, latency) = requests.get(RouteStatus(route: route, status: status)) {
            (Counter(label: "herd_http_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory),
             Metrics.Timer(label: "herd_http_request_duration_seconds", dimensions: [("route", route)], factory: factory))
        }
        count.increment()
        latency.recordNanoseconds(Int64(seconds * 1e9))
    }

    func grpc(service: String, method: String, code: String, seconds: Double) {
        let (count, latency) = grpcCalls.get(GRPCCall(service: service, method: method, code: code)) {
            (Counter(label: "herd_grpc_requests_total", dimensions: [("service", service), ("method", method), ("code", code)], factory: factory),
             Metrics.Timer(label: "herd_grpc_request_duration_seconds", dimensions: [("service", service), ("method", method)], factory: factory))
        }
        count.increment()
        latency.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// The gRPC server's interceptor recording into these metrics.
    public var grpcInterceptor: MetricsInterceptor {
        MetricsInterceptor { [self] service, method, code, seconds in grpc(service: service, method: method, code: code, seconds: seconds) }
    }

    /// Records one recommend call's stage times and its answer's source (`herd_recommend_stage_duration_seconds{stage}`, `herd_recommend_answers_total{source}`).
    func stages(_ timings: StageTimings, source: String) {
        for (i, ms) in timings.millisecondsInOrder.enumerated() {
            stageTimers.get(i) {
                Metrics.Timer(label: "herd_recommend_stage_duration_seconds", dimensions: [("stage", StageTimings.names[i])], factory: factory)
            }.recordNanoseconds(Int64(ms * 1e6))
        }
        answer(source: source)
    }

    private func answer(source: String) {
        answers.get(source) { Counter(label: "herd_recommend_answers_total", dimensions: [("source", source)], factory: factory) }.increment()
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String { registry.emitToString() }
}

/// Instruments made once per key and kept: `get` makes one (under the lock) the first time a key is seen.
final class InstrumentCache<Key: Hashable, Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Key: Value] = [:]

    func get(_ key: Key, make: () -> Value) -> Value {
        lock.lock()
        defer { lock.unlock() }
        if let v = values[key] { return v }
        let v = make()
        values[key] = v
        return v
    }
}
