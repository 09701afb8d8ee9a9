import Foundation
import HerdServing
import Hummingbird

/// The recommender's HTTP surface, a thin adapter over `Recommender` (all logic is transport-free):
///
/// - `GET /recommender/recommend/{id}?k=10&canK=50` → `RecommendResponse` JSON (Friesian's
///   `{ids, probs, success, errorCode, errorMsg}` plus `coldStart`, `degraded`, `source`,
///   `timingsMs`). A bad id, k or canK → 400 with `success: false`, `errorCode: "INVALID_ARGUMENT"`.
/// - `GET /healthz` → 200 while the process serves; `GET /readyz` → 200 `ready`, or 503 with the
///   reason while the recommender is degraded (feature store down or slow); `GET /metrics` →
///   Prometheus text; `GET /` → a page to try it by hand.
public enum RecommenderRoutes {
    /// Largest k and canK a request may ask for (the recommender validates the rest).
    static let maxParameter = 10_000

    public static func add(to router: Router<BasicRequestContext>, recommender: Recommender, metrics: ServerMetrics) {
        router.get("/recommender/recommend/:id") { request, context -> Response in
            let t0 = ContinuousClock.now
            let response = await recommend(request, context, recommender, metrics)
            metrics.request(route: "/recommender/recommend", status: Int(response.status.code), seconds: seconds(since: t0))
            return response
        }
        router.get("/healthz") { _, _ -> Response in
            metrics.request(route: "/healthz", status: 200, seconds: 0)
            return json(#"{"status":"ok"}"#, status: .ok)
        }
        router.get("/readyz") { _, _ -> Response in
            switch recommender.readiness {
            case .ready:
                metrics.request(route: "/readyz", status: 200, seconds: 0)
                return json(#"{"status":"ready"}"#, status: .ok)
            case .degraded(let why):
                metrics.request(route: "/readyz", status: 503, seconds: 0)
                return json(encode(["status": "degraded", "reason": why]), status: .serviceUnavailable)
            }
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: RecommenderPage.html)))
        }
    }

    private static func recommend(_ request: Request, _ context: BasicRequestContext, _ recommender: Recommender, _ metrics: ServerMetrics) async -> Response {
        func refuse(_ message: String) -> Response {
            let body = (try? RecommendResponse(error: .invalidArgument(message)).jsonData()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return json(body, status: .badRequest)
        }
        guard let idText = context.parameters.get("id"), let userID = Int64(idText) else {
            return refuse("the user id must be an integer, got '\(context.parameters.get("id") ?? "")'")
        }
        func parameter(_ name: String) -> Result<Int?, Never>? {
            guard let text = request.uri.queryParameters.get(name) else { return .success(nil) }
            guard let v = Int(text), v > 0, v <= maxParameter else { return nil }
            return .success(v)
        }
        guard case .success(let kValue)? = parameter("k") else {
            return refuse("k must be an integer in 1…\(maxParameter), got '\(request.uri.queryParameters.get("k") ?? "")'")
        }
        guard case .success(let canKValue)? = parameter("canK") else {
            return refuse("canK must be an integer in 1…\(maxParameter), got '\(request.uri.queryParameters.get("canK") ?? "")'")
        }
        let k = kValue ?? 10
        let canK = canKValue ?? max(50, k)
        do {
            // NOTE: `recommend` blocks (store round trips, GEMMs); it runs on a dispatch thread so the
            // event loops and Swift's cooperative pool keep serving other connections.
            let answer = try await offload { try recommender.recommend(userID: userID, k: k, canK: canK) }
            metrics.stages(answer.timings.milliseconds, source: answer.source.rawValue)
            let data = try RecommendResponse(answer).jsonData()
            return json(String(decoding: data, as: UTF8.self), status: .ok)
        } catch let e as RecommenderError {
            let body = (try? RecommendResponse(error: e).jsonData()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return json(body, status: HTTPResponse.Status(code: e.httpStatus))
        } catch {
            let body = (try? RecommendResponse(error: .unavailable("\(error)")).jsonData()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return json(body, status: .internalServerError)
        }
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
