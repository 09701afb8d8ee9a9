import Foundation
import HerdFeatures
import HerdServing
import HTTPTypes
import Hummingbird

/// The recommender's HTTP surface, a thin adapter over `Recommender` (all logic is transport-free):
///
/// - `GET /recommender/recommend/{id}?k=10&canK=50[&idType=raw|encoded][&details=1]` →
///   `RecommendResponse` JSON (Friesian's `{ids, probs, success, errorCode, errorMsg}` plus
///   `coldStart`, `degraded`, `source`, `reason`, `timingsMs`), and a `Server-Timing` header with
///   the same stages. A bad id, k or canK → 400 with `success: false`, `errorCode: "INVALID_ARGUMENT"`.
/// - `GET /healthz` → 200 while the process serves; `GET /readyz` → 200 `ready`, or 503 with the
///   reason while the recommender is degraded (feature store down or slow); `GET /metrics` →
///   Prometheus text; `GET /` → a page to try it by hand (`/?user=ID` asks at once).
///
/// Raw and encoded ids: the workspace's tables, embeddings, store and index are keyed by encoded
/// ids (the fitted pipeline's categorify index, `1…N`). `{id}` is taken as a raw user id (the value
/// in the data) when the pipeline's user index knows it, else as an encoded id when it is an
/// integer (Friesian's convention), else as a new user's raw id (cold start) when it has the shape
/// of the known raw ids (their lengths and characters), else it is refused (400);
/// `idType=raw|encoded` forces one reading. A raw request gets raw item ids back: `ids` are then strings (the items'
/// raw ids; an item the index does not know, e.g. one added through `/admin/items`, as its encoded
/// id in decimal), with `encodedIds`, `userId` and `encodedUserId` beside them. An encoded
/// request gets Friesian's integer `ids`. `details=1` adds `items`: each item's feature row from
/// the store (`null` when the store does not have it or is down).
public enum RecommenderRoutes {
    /// Largest k and canK a request may ask for (the recommender validates the rest).
    static let maxParameter = 10_000

    public static func add(to router: Router<BasicRequestContext>, recommender: Recommender, metrics: ServerMetrics) {
        add(to: router, live: LiveRecommender(recommender), metrics: metrics)
    }

    /// `requestThreads`: threads that run the recommend pipeline (nil: dispatch's global queue, about
    /// one thread per core — right when nothing in the pipeline waits; see `BlockingPool`).
    public static func add(to router: Router<BasicRequestContext>, live: LiveRecommender, metrics: ServerMetrics, requestThreads: Int? = nil) {
        add(to: router, live: live, metrics: metrics, pool: requestThreads.map { BlockingPool(threads: $0, name: "herd-recommend") })
    }

    /// `pool`: the threads that run the recommend pipeline (nil: dispatch's global queue); a request
    /// whose task already runs on them (`RecommenderServer.run` prefers them for the HTTP server's
    /// tasks) runs it in place.
    static func add(to router: Router<BasicRequestContext>, live: LiveRecommender, metrics: ServerMetrics, pool: BlockingPool?) {
        router.get("/recommender/recommend/:id") { request, context -> Response in
            let t0 = ContinuousClock.now
            let response = await recommend(request, context, live, metrics, pool)
            metrics.request(route: "/recommender/recommend", status: Int(response.status.code), seconds: seconds(since: t0))
            pool?.endRequest()
            return response
        }
        router.get("/healthz") { _, _ -> Response in
            metrics.request(route: "/healthz", status: 200, seconds: 0)
            return json(#"{"status":"ok"}"#, status: .ok)
        }
        router.get("/readyz") { _, _ -> Response in
            // NOTE: readiness may probe the store (a Redis PING): off the event loop.
            let readiness = (try? await offload { live.current.readiness }) ?? .degraded("readiness check failed")
            switch readiness {
            case .ready:
                metrics.request(route: "/readyz", status: 200, seconds: 0)
                return json(#"{"status":"ready"}"#, status: .ok)
            case .degraded(let why):
                metrics.request(route: "/readyz", status: 503, seconds: 0)
                return json(encode(["status": "degraded", "reason": why]), status: .serviceUnavailable)
            }
        }
        router.get("/metrics") { _, _ -> Response in
            var text = metrics.render()
            if let batcher = (live.current.backends.ranking as? LocalRanking)?.batcher { text += rankingBatcherMetrics(batcher.statistics) }
            if let local = live.current.backends.ranking as? LocalRanking { text += local.modelMetrics }
            if let cached = live.current.context?.store as? CachedFeatureStore { text += featureCacheMetrics(cached) }
            if let pool { text += requestPoolMetrics(pool.statistics) }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: RecommenderPage.html)))
        }
    }

    /// The near cache's counters in Prometheus text (`FeatureRowCache.Stats`, since the store was
    /// made), labelled with the cached kind.
    static func featureCacheMetrics(_ store: CachedFeatureStore) -> String {
        let s = store.cache.statistics, kind = store.kind.rawValue
        let counters = [("herd_feature_cache_hits_total", "Rows answered from the near cache.", s.hits),
                        ("herd_feature_cache_misses_total", "Rows not in the near cache (or expired there), fetched from the store.", s.misses),
                        ("herd_feature_cache_expired_total", "Cached rows found older than the TTL (also counted as misses).", s.expired),
                        ("herd_feature_cache_evictions_total", "Cached rows dropped to stay within the capacity.", s.evictions),
                        ("herd_feature_cache_invalidations_total", "Cached rows dropped because they were rewritten or the schema changed.", s.invalidations)]
            .map { "# HELP \($0.0) \($0.1)\n# TYPE \($0.0) counter\n\($0.0){kind=\"\(kind)\"} \($0.2)\n" }.joined()
        let gauges = [("herd_feature_cache_entries", "Rows held in the near cache.", s.entries),
                      ("herd_feature_cache_capacity", "Most rows the near cache holds.", store.cache.capacity)]
            .map { "# HELP \($0.0) \($0.1)\n# TYPE \($0.0) gauge\n\($0.0){kind=\"\(kind)\"} \($0.2)\n" }.joined()
        return counters + gauges
    }

    /// The request threads' queue (`BlockingPool.Stats`, since the server started) in Prometheus
    /// text: how long jobs waited for a thread, by kind (`task`: an HTTP connection task started or
    /// resumed on the threads; `closure`: a pipeline handed over from elsewhere, or a requeued
    /// request's turn), the longest queue and the requeues (`BlockingPool.beginRequest`).
    static func requestPoolMetrics(_ s: BlockingPool.Stats) -> String {
        let name = "herd_request_pool_wait_seconds"
        var out = "# HELP \(name) Time jobs waited for a request thread (queued to started).\n# TYPE \(name) histogram\n"
        for (kind, w) in [("task", s.tasks), ("closure", s.closures)] {
            var cumulative = 0
            for (i, count) in w.buckets.enumerated() {
                cumulative += count
                let le = i < BlockingPool.waitBounds.count ? String(BlockingPool.waitBounds[i]) : "+Inf"
                out += "\(name)_bucket{kind=\"\(kind)\",le=\"\(le)\"} \(cumulative)\n"
            }
            out += "\(name)_sum{kind=\"\(kind)\"} \(w.seconds)\n\(name)_count{kind=\"\(kind)\"} \(w.jobs)\n"
        }
        out += "# HELP herd_request_pool_wait_max_seconds Longest wait for a request thread, by kind.\n# TYPE herd_request_pool_wait_max_seconds gauge\n"
        for (kind, w) in [("task", s.tasks), ("closure", s.closures)] { out += "herd_request_pool_wait_max_seconds{kind=\"\(kind)\"} \(w.max)\n" }
        out += "# HELP herd_request_pool_requeued_total Requests whose connection task went on to them without waiting, queued again where they arrived.\n# TYPE herd_request_pool_requeued_total counter\nherd_request_pool_requeued_total \(s.requeued)\n"
        out += "# HELP herd_request_pool_queued_max Most jobs queued for the request threads at once.\n# TYPE herd_request_pool_queued_max gauge\nherd_request_pool_queued_max \(s.maxQueued)\n"
        return out
    }

    /// The ranking batcher's counters in Prometheus text (`RankingBatcher.Stats`, since the
    /// recommender was loaded): forwards run, requests and rows ranked, requests expired in the queue.
    static func rankingBatcherMetrics(_ s: RankingBatcher.Stats) -> String {
        [("herd_ranking_forwards_total", "Ranking forwards run (each over one or more requests' rows).", s.forwards),
         ("herd_ranking_requests_total", "Requests ranked through the batcher.", s.requests),
         ("herd_ranking_rows_total", "Candidate rows ranked through the batcher.", s.rows),
         ("herd_ranking_expired_total", "Requests whose deadline passed while queued for ranking.", s.expired)]
            .map { "# HELP \($0.0) \($0.1)\n# TYPE \($0.0) counter\n\($0.0) \($0.2)\n" }.joined()
    }

    /// Reads `text` as a raw or encoded user id (`RawIDs.resolveUser`; `idType` as in the query).
    static func resolve(_ text: String, idType: String?, ids: RawIDs?) -> Result<RequestedUser, RecommenderError> {
        var type: IDType?
        if let idType {
            guard let t = IDType(rawValue: idType) else { return .failure(.invalidArgument("idType must be raw or encoded, got '\(idType)'")) }
            type = t
        }
        return RawIDs.resolveUser(text, idType: type, ids: ids)
    }

    private static func recommend(_ request: Request, _ context: BasicRequestContext, _ live: LiveRecommender, _ metrics: ServerMetrics,
                                  _ pool: BlockingPool?) async -> Response {
        func refuse(_ error: RecommenderError) -> Response {
            let body = (try? RecommendResponse(error: error).jsonData()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return json(body, status: .badRequest)
        }
        let recommender = live.current, rawIDs = live.rawIDs
        // NOTE: `queryParameters` parses the query string on every access: once per request here.
        let query = request.uri.queryParameters
        // NOTE: Foundation's percent decoding only when there is an escape (it was ~0.4 % of a request's CPU).
        let idText = context.parameters.get("id").map { $0.utf8.contains(UInt8(ascii: "%")) ? ($0.removingPercentEncoding ?? $0) : $0 } ?? ""
        guard !idText.isEmpty else { return refuse(.invalidArgument("the user id is empty")) }
        let userID: RequestedUser
        switch resolve(idText, idType: query.get("idType").map { String($0) }, ids: rawIDs) {
        case .success(let u): userID = u
        case .failure(let e): return refuse(e)
        }
        func parameter(_ name: String) -> Result<Int?, Never>? {
            guard let text = query.get(name) else { return .success(nil) }
            guard let v = Int(text), v > 0, v <= maxParameter else { return nil }
            return .success(v)
        }
        guard case .success(let kValue)? = parameter("k") else {
            return refuse(.invalidArgument("k must be an integer in 1…\(maxParameter), got '\(query.get("k") ?? "")'"))
        }
        guard case .success(let canKValue)? = parameter("canK") else {
            return refuse(.invalidArgument("canK must be an integer in 1…\(maxParameter), got '\(query.get("canK") ?? "")'"))
        }
        let details = ["1", "true", "yes"].contains(query.get("details") ?? "")
        let k = kValue ?? 10
        let canK = canKValue ?? max(50, k)
        do {
            // NOTE: `recommend` blocks (store round trips, GEMMs); it runs on a dispatch thread (or the
            // request threads, in place when this task runs on them) so the event loops and Swift's
            // cooperative pool keep serving other connections.
            let work = { @Sendable () throws -> (Recommendation, FeatureRows?) in
                let a = try recommender.recommend(userID: userID.encoded, k: k, canK: canK)
                let rows = details && !a.ids.isEmpty ? try? recommender.context?.store.get(kind: .item, ids: a.ids) : nil
                return (a, rows)
            }
            let answer: Recommendation, rows: FeatureRows?
            if let pool {
                await pool.beginRequest()
                (answer, rows) = try await pool.run(work)
            } else {
                (answer, rows) = try await offload(work)
            }
            metrics.stages(answer.timings, source: answer.source.rawValue)
            let bytes = try RecommendResponse(answer).jsonBytes()
            guard userID.raw != nil || details else {
                // NOTE: the plain answer's bytes go straight into the response buffer (no String round trip).
                var response = Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
                response.headers[serverTimingName] = serverTiming(answer.timings)
                return response
            }
            var body = String(decoding: bytes, as: UTF8.self)
            if case .raw(let raw, _) = userID {
                body = try decorate(Data(bytes)) { o in
                    o["ids"] = rawIDs?.rawItems(answer.ids) ?? answer.ids.map { String($0) }
                    o["encodedIds"] = answer.ids
                    o["userId"] = raw
                    o["encodedUserId"] = userID.encoded
                }
            }
            if details {
                body = try decorate(Data(body.utf8)) { o in o["items"] = itemDetails(answer.ids, rows) }
            }
            var response = json(body, status: .ok)
            response.headers[serverTimingName] = serverTiming(answer.timings)
            return response
        } catch let e as RecommenderError {
            let body = (try? RecommendResponse(error: e).jsonData()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return json(body, status: HTTPResponse.Status(code: e.httpStatus))
        } catch {
            let body = (try? RecommendResponse(error: .unavailable("\(error)")).jsonData()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return json(body, status: .internalServerError)
        }
    }

    /// The answer's JSON with extra members (sorted keys, one line).
    static func decorate(_ data: Data, _ edit: (inout [String: Any]) -> Void) throws -> String {
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return String(decoding: data, as: UTF8.self) }
        edit(&object)
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    /// One JSON object per item (column → value), or null when the store has no row for it.
    static func itemDetails(_ ids: [Int64], _ rows: FeatureRows?) -> [Any] {
        guard let rows, rows.ids == ids else { return ids.map { _ in NSNull() } }
        return rows.rows.map { row -> Any in
            guard let row else { return NSNull() }
            var o: [String: Any] = [:]
            for (field, value) in zip(rows.schema.fields, row) { o[field.name] = jsonValue(value) }
            return o
        }
    }

    static func jsonValue(_ v: Value) -> Any {
        switch v {
        case .null: return NSNull()
        case .int(let x): return x
        case .double(let x): return x.isFinite ? x : NSNull()
        case .string(let s): return s
        case .list(let l): return l.map(jsonValue)
        }
    }

    static let serverTimingName = HTTPField.Name("Server-Timing")!

    /// `Server-Timing` (W3C): `recall;dur=0.410, features;dur=0.220, …` in milliseconds, three
    /// decimals (as `String(format: "%.3f")`, which it replaces: Foundation's formatting was the
    /// header's cost).
    static func serverTiming(_ t: StageTimings) -> String {
        var out = ""
        out.reserveCapacity(120)
        for (i, (stage, ms)) in zip(StageTimings.names, t.millisecondsInOrder).enumerated() {
            if i > 0 { out += ", " }
            out += stage
            out += ";dur="
            out += fixed3(ms)
        }
        return out
    }

    /// `x` with three decimals, rounded to nearest, the same text as `String(format: "%.3f", x)`.
    static func fixed3(_ x: Double) -> String {
        let scaled = (x * 1000).rounded()
        // NOTE: printf rounds the exact binary value; `x * 1000` is rounded once more, which can only
        // land a near-tie on the tie itself (rounding is monotonic): ties and values out of the
        // integer range go through Foundation.
        guard x.isFinite, x >= 0, scaled < 1e15, abs(x * 1000 - scaled) != 0.5 else { return String(format: "%.3f", x) }
        let n = Int64(scaled), frac = Int(n % 1000)
        let digits = String(frac)
        return String(n / 1000) + "." + String(repeating: "0", count: 3 - digits.count) + digits
    }

    static func json(_ body: String, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func encode(_ d: [String: String]) -> String {
        (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func seconds(since t0: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - t0
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Runs blocking work on a dispatch thread and awaits it.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
