import Foundation
import HerdServing
import HerdTraining
import Hummingbird

/// Admin operations over HTTP, each behind `Authorization: Bearer TOKEN` (the token from
/// `RecommenderServer.Configuration.adminToken`, `herd serve --admin-token-file FILE`):
///
/// - `POST /admin/reload` → loads the item index, the ranking model's latest version, the
///   feature store and the raw-id mapping again and swaps them in without dropping requests in
///   flight; model versions refused at load are tried again. 200 `{"reloaded": true, …}`, or 500
///   `{"error"}` with the previous recommender still serving.
/// - `POST /admin/items` with `{"items": [{"id": 123, "embedding": [..D..], "features": {…}}]}`
///   → adds the items to the live store (their rows) and index (their vectors) and saves the
///   index, like `herd nearline`'s add: the next request can recall them. 200 `{"added": n, …}`.
///
/// No token configured → 403 with a JSON error saying how to enable them; a missing or wrong
/// token → 401 (`WWW-Authenticate: Bearer`). Bad bodies → 400 `{"error"}`.
public enum AdminRoutes {
    public static let maxBodyBytes = 32 << 20

    public static func add(to router: Router<BasicRequestContext>, server: RecommenderServer) {
        let c = server.configuration
        // The ranking model's version after a reload, when it is a workspace model name.
        let version: @Sendable () -> Int? = { c.rankingModel.contains("/") ? nil : c.workspace.latestVersion(of: c.rankingModel) }
        add(to: router, token: c.adminToken, live: server.live, registry: server.registry,
            indexFile: c.workspace.itemIndex, rankingVersion: version, metrics: server.metrics)
    }

    public static func add(to router: Router<BasicRequestContext>, token: String?, live: LiveRecommender, registry: ModelRegistry,
                           indexFile: URL?, rankingVersion: @escaping @Sendable () -> Int? = { nil }, metrics: ServerMetrics) {
        router.post("/admin/reload") { request, _ -> Response in
            let t0 = ContinuousClock.now
            let response = await reload(request, token: token, live: live, registry: registry, rankingVersion: rankingVersion)
            metrics.request(route: "/admin/reload", status: Int(response.status.code), seconds: RecommenderRoutes.seconds(since: t0))
            return response
        }
        router.post("/admin/items") { request, _ -> Response in
            let t0 = ContinuousClock.now
            let response = await addItems(request, token: token, live: live, indexFile: indexFile)
            metrics.request(route: "/admin/items", status: Int(response.status.code), seconds: RecommenderRoutes.seconds(since: t0))
            return response
        }
    }

    /// nil when the request may go on, else the refusal.
    static func authorize(_ request: Request, token: String?) -> Response? {
        guard let token else {
            return error("admin routes are disabled: start herd serve with --admin-token-file FILE (a file holding the token; "
                + "RecommenderServer.Configuration.adminToken) and send Authorization: Bearer TOKEN", .forbidden)
        }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), constantTimeEqual(Array(header.dropFirst("Bearer ".count).utf8), Array(token.utf8)) else {
            var r = error(header.isEmpty ? "send Authorization: Bearer TOKEN (the admin token)" : "wrong admin token", .unauthorized)
            r.headers[.wwwAuthenticate] = "Bearer"
            return r
        }
        return nil
    }

    /// Compares without an early exit, so the time taken does not tell how much of a guess matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }

    private static func reload(_ request: Request, token: String?, live: LiveRecommender, registry: ModelRegistry,
                               rankingVersion: @Sendable () -> Int?) async -> Response {
        if let refusal = authorize(request, token: token) { return refusal }
        let t0 = ContinuousClock.now
        do {
            let r = try await offload { try live.reload() }
            let retried = registry.forgetRefused()
            var answer: [String: Any] = ["reloaded": true, "model_versions_retried": retried, "seconds": RecommenderRoutes.seconds(since: t0)]
            if let c = r.context {
                answer["index"] = c.index.spec
                answer["index_count"] = c.index.count
                answer["users"] = c.userEmbeddings.count
                answer["store"] = c.store.spec
                answer["ranking_model"] = c.ranking.config.kind.rawValue
            } else {
                // NOTE: a split recommender holds no parts of its own: reload the services instead.
                answer["store"] = r.backends.features.spec
            }
            if let v = rankingVersion() { answer["ranking_version"] = v }
            return json(answer, .ok)
        } catch {
            return Self.error("reload failed: \(error); the previous recommender keeps serving", .internalServerError)
        }
    }

    private static func addItems(_ request: Request, token: String?, live: LiveRecommender, indexFile: URL?) async -> Response {
        if let refusal = authorize(request, token: token) { return refusal }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: maxBodyBytes) } catch {
            return Self.error("the request body is over \(maxBodyBytes) bytes", .contentTooLarge)
        }
        let r = live.current
        guard let c = r.context else {
            return Self.error("this recommender runs over remote services (split mode): add items through the Recall service (gRPC AddItem)", .notImplemented)
        }
        do {
            let items = try ItemsUpdate.parse(Data(body.readableBytesView), dimension: c.index.dimension, schema: r.itemSchema)
            try await offload {
                try ItemsUpdate.add(items, index: c.index, store: c.store, schema: r.itemSchema, indexFile: indexFile)
            }
            return json(["added": items.count, "with_features": items.filter { $0.features != nil }.count,
                         "index": c.index.spec, "index_count": c.index.count, "store": c.store.spec], .ok)
        } catch let e as RecommenderError {
            return Self.error(e.message, HTTPResponse.Status(code: e.httpStatus))
        } catch {
            return Self.error("adding the items failed: \(error)", .internalServerError)
        }
    }

    static func error(_ message: String, _ status: HTTPResponse.Status) -> Response {
        TFServingRoutes.error(message, status)
    }

    static func json(_ object: [String: Any], _ status: HTTPResponse.Status) -> Response {
        TFServingRoutes.json(object, status)
    }
}
