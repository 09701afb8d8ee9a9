import Foundation
@testable import HerdServer
import HerdServing
import Metrics
import Prometheus
import XCTest

/// The per-request pieces of `herd serve` outside the pipeline, each against the code it replaced:
/// cached metric instruments vs. an instrument made per event, `Server-Timing` vs. Foundation's
/// `String(format:)`.
final class ServerHotPathTests: XCTestCase {
    /// The header as it was written before (the reference).
    static func referenceServerTiming(_ ms: [String: Double]) -> String {
        ["recall", "features", "preprocess", "ranking", "top_k", "total"].compactMap { stage in
            ms[stage].map { "\(stage);dur=\(String(format: "%.3f", $0))" }
        }.joined(separator: ", ")
    }

    func testFixed3MatchesPrintf() {
        var rng = SystemRandomNumberGenerator()
        var values: [Double] = [0, 1, 0.0005, 0.0015, 0.0025, 1.0005, 0.9995, 999.9995, 12.345_678_9, 1e-9, 0.000_499_999,
                                123_456.789_5, 2.5e-4, 0.125, 0.1235, 7.000_5, 1e14, 9.999_999_999]
        values += (0..<20_000).map { _ in Double.random(in: 0..<50, using: &rng) }
        values += (0..<5_000).map { _ in Double(Int.random(in: 0..<2_000_000, using: &rng)) / 2000 }  // many exact ties
        values += (0..<5_000).map { _ in Double.random(in: 0..<1e9, using: &rng) }
        for x in values {
            XCTAssertEqual(RecommenderRoutes.fixed3(x), String(format: "%.3f", x), "\(x)")
        }
    }

    func testServerTimingMatchesTheFormatBasedHeader() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var t = StageTimings()
            t.recall = Double.random(in: 0..<0.01, using: &rng)
            t.features = Double.random(in: 0..<0.1, using: &rng)
            t.preprocess = Double.random(in: 0..<0.001, using: &rng)
            t.ranking = Double.random(in: 0..<1, using: &rng)
            t.topK = Double(Int.random(in: 0..<100, using: &rng)) * 5e-7
            t.total = t.recall + t.features + t.preprocess + t.ranking + t.topK
            XCTAssertEqual(RecommenderRoutes.serverTiming(t), Self.referenceServerTiming(t.milliseconds))
        }
        XCTAssertEqual(RecommenderRoutes.serverTiming(StageTimings()),
                       "recall;dur=0.000, features;dur=0.000, preprocess;dur=0.000, ranking;dur=0.000, top_k;dur=0.000, total;dur=0.000")
    }

    func testStageTimingsInOrderMatchTheDictionary() {
        var t = StageTimings()
        (t.recall, t.features, t.preprocess, t.ranking, t.topK, t.total) = (0.001, 0.002, 0.003, 0.004, 0.005, 0.015)
        XCTAssertEqual(StageTimings.names, ["recall", "features", "preprocess", "ranking", "top_k", "total"])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: zip(StageTimings.names, t.millisecondsInOrder)), t.milliseconds)
        XCTAssertEqual(t.millisecondsInOrder, [1, 2, 3, 4, 5, 15])
    }

    /// The same events through `ServerMetrics` (instruments made once and kept) and through fresh
    /// swift-metrics instruments per event on a registry of the same buckets give the same text.
    func testCachedInstrumentsRenderAsInstrumentsMadePerEvent() {
        let metrics = ServerMetrics()
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
        ]
        XCTAssertEqual(metrics.render(), "", "nothing is rendered before the first event")
        var rng = SystemRandomNumberGenerator()
        let routes = ["/recommender/recommend", "/healthz", "/v1/models/wnd:predict"]
        let sources = ["ranked", "recall", "popular"]
        for i in 0..<600 {
            let route = routes[i % 3], status = [200, 400, 503][Int.random(in: 0..<3, using: &rng)]
            let secs = Double.random(in: 0..<3, using: &rng)
            metrics.request(route: route, status: status, seconds: secs)
            Counter(label: "herd_http_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory).increment()
            Metrics.Timer(label: "herd_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
                .recordNanoseconds(Int64(secs * 1e9))
            var t = StageTimings()
            (t.recall, t.features, t.preprocess, t.ranking, t.topK, t.total) =
                (Double.random(in: 0..<0.002, using: &rng), Double.random(in: 0..<0.02, using: &rng), 1e-5, Double.random(in: 0..<0.5, using: &rng), 0, 0.3)
            let source = sources[Int.random(in: 0..<3, using: &rng)]
            metrics.stages(t, source: source)
            for (stage, v) in t.milliseconds {
                Metrics.Timer(label: "herd_recommend_stage_duration_seconds", dimensions: [("stage", stage)], factory: factory)
                    .recordNanoseconds(Int64(v * 1e6))
            }
            Counter(label: "herd_recommend_answers_total", dimensions: [("source", source)], factory: factory).increment()
            let code = ["OK", "INVALID_ARGUMENT"][i % 2]
            metrics.grpc(service: "herd.Recommender", method: "Recommend", code: code, seconds: secs / 10)
            Counter(label: "herd_grpc_requests_total", dimensions: [("service", "herd.Recommender"), ("method", "Recommend"), ("code", code)],
                    factory: factory).increment()
            Metrics.Timer(label: "herd_grpc_request_duration_seconds", dimensions: [("service", "herd.Recommender"), ("method", "Recommend")],
                          factory: factory).recordNanoseconds(Int64(secs / 10 * 1e9))
        }
        // NOTE: the registry's order of families and label sets follows its dictionaries: compare as sorted lines.
        let got = metrics.render().split(separator: "\n").sorted(), want = registry.emitToString().split(separator: "\n").sorted()
        XCTAssertEqual(got, want)
        XCTAssertTrue(got.contains { $0.hasPrefix("herd_http_requests_total{route=\"/healthz\"") }, "\(got.prefix(20))")
        XCTAssertTrue(got.contains { $0.hasPrefix("herd_recommend_stage_duration_seconds_count{stage=\"top_k\"} 600") }, "\(got)")
    }

    func testInstrumentCacheMakesOncePerKeyUnderConcurrency() {
        let cache = InstrumentCache<Int, NSObject>()
        let made = ManagedCount()
        let seen = ManagedSet()
        DispatchQueue.concurrentPerform(iterations: 2000) { i in
            let v = cache.get(i % 7) {
                made.add()
                return NSObject()
            }
            seen.insert(i % 7, ObjectIdentifier(v))
        }
        XCTAssertEqual(made.value, 7)
        XCTAssertEqual(seen.distinctPerKey, [1, 1, 1, 1, 1, 1, 1])
    }
}

private final class ManagedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

private final class ManagedSet: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [Int: Set<ObjectIdentifier>] = [:]
    func insert(_ key: Int, _ id: ObjectIdentifier) { lock.withLock { _ = ids[key, default: []].insert(id) } }
    var distinctPerKey: [Int] { lock.withLock { ids.keys.sorted().map { ids[$0]!.count } } }
}
