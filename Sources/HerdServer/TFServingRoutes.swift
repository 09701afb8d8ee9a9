import Foundation
import HerdData
import HerdServing
import HerdTraining
import Hummingbird

/// TF-Serving-compatible REST over the workspace's exports (`W/models/<name>/<version>`), so
/// existing clients work:
///
/// - `POST /v1/models/{name}[/versions/{v}]:predict` with `{"instances": [{col: v}, …]}` →
///   `{"predictions": [[p], …]}`, or `{"inputs": {col: [v, …]}}` → `{"outputs": [[p], …]}`.
///   Feature-table exports read the encoded columns of their batch spec; Criteo-file exports
///   (`herd train --train FILE --out DIR`) read raw Criteo rows `{"I1"…"I13", "C1"…"C26"}`
///   (`label` ignored), transformed by the export's feature state as `herd predict` does.
/// - `GET /v1/models/{name}[/versions/{v}]` → `{"model_version_status": [{"version", "state", "status"}]}`.
/// - `GET /v1/models/{name}[/versions/{v}]/metadata` → the inputs the model reads.
/// - Errors: `{"error": "…"}` with 400 (bad body, shapes, ids), 404 (no such model/version),
///   413 (body over the limit), 503 (the version was refused at load).
public enum TFServingRoutes {
    public static let maxBodyBytes = 8 << 20

    public static func add(to router: Router<BasicRequestContext>, registry: ModelRegistry, metrics: ServerMetrics) {
        // NOTE: one parameter name per path position for every method (Hummingbird's trie): the
        // POST routes' `name`/`version` segments carry the `:predict` suffix.
        router.post("/v1/models/:name") { request, context -> Response in
            let spec = context.parameters.get("name") ?? ""
            guard spec.hasSuffix(":predict") else { return error("unknown method in '\(spec)': use /v1/models/NAME:predict", .notFound) }
            return await predict(request, name: String(spec.dropLast(":predict".count)), version: nil, registry, metrics)
        }
        router.post("/v1/models/:name/versions/:version") { request, context -> Response in
            let spec = context.parameters.get("version") ?? ""
            guard spec.hasSuffix(":predict"), let v = Int(spec.dropLast(":predict".count)) else {
                return error("use /v1/models/NAME/versions/N:predict with an integer N", .badRequest)
            }
            return await predict(request, name: context.parameters.get("name") ?? "", version: v, registry, metrics)
        }
        router.get("/v1/models/:name") { _, context -> Response in status(context.parameters.get("name") ?? "", nil, registry) }
        router.get("/v1/models/:name/versions/:version") { _, context -> Response in
            guard let v = Int(context.parameters.get("version") ?? "") else { return error("the version must be an integer", .badRequest) }
            return status(context.parameters.get("name") ?? "", v, registry)
        }
        router.get("/v1/models/:name/metadata") { _, context -> Response in metadata(context.parameters.get("name") ?? "", nil, registry) }
        router.get("/v1/models/:name/versions/:version/metadata") { _, context -> Response in
            guard let v = Int(context.parameters.get("version") ?? "") else { return error("the version must be an integer", .badRequest) }
            return metadata(context.parameters.get("name") ?? "", v, registry)
        }
    }

    private static func predict(_ request: Request, name: String, version: Int?, _ registry: ModelRegistry, _ metrics: ServerMetrics) async -> Response {
        let t0 = ContinuousClock.now
        let response: Response
        do {
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: maxBodyBytes) } catch {
                metrics.request(route: "/v1/models:predict", status: 413, seconds: RecommenderRoutes.seconds(since: t0))
                return Self.error("the request body is over \(maxBodyBytes) bytes", .contentTooLarge)
            }
            let data = Data(body.readableBytesView)
            let model = try registry.model(name, version: version)
            let (batch, columnar): (Batch, Bool)
            switch model.export.featureState {
            case .table(_, let spec): (batch, columnar) = try PredictRequest.batch(body: data, spec: spec)
            case .criteo(let state): (batch, columnar) = try PredictRequest.criteoBatch(body: data, state: state)
            }
            let probs = try await offload { model.pool.probabilities(batch, microBatch: 256) }
            let key = columnar ? "outputs" : "predictions"
            let out = try JSONSerialization.data(withJSONObject: [key: probs.map { [Double($0)] }])
            response = Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: out)))
        } catch let e as RecommenderError {
            response = error(e.message, HTTPResponse.Status(code: e.httpStatus))
        } catch let e as ModelRegistryError {
            if case .notFound = e { response = error(e.description, .notFound) } else { response = error(e.description, .serviceUnavailable) }
        } catch {
            response = Self.error("\(error)", .internalServerError)
        }
        metrics.request(route: "/v1/models:predict", status: Int(response.status.code), seconds: RecommenderRoutes.seconds(since: t0))
        return response
    }

    private static func status(_ name: String, _ version: Int?, _ registry: ModelRegistry) -> Response {
        // Asking for the status loads the requested (or latest loadable) version, as TF Serving
        // reports versions it has loaded.
        _ = try? registry.model(name, version: version)
        let all = registry.status(name).filter { version == nil || $0.version == version }
        guard !all.isEmpty else { return error("no model '\(name)'" + (version.map { " version \($0)" } ?? ""), .notFound) }
        let list: [[String: Any]] = all.reversed().map {
            ["version": String($0.version), "state": $0.state,
             "status": ["error_code": $0.error == nil ? "OK" : "UNAVAILABLE", "error_message": $0.error ?? ""]]
        }
        return json(["model_version_status": list], .ok)
    }

    private static func metadata(_ name: String, _ version: Int?, _ registry: ModelRegistry) -> Response {
        do {
            let m = try registry.model(name, version: version)
            var inputs: [String: Any] = [:]
            switch m.export.featureState {
            case .table(_, let spec):
                for s in spec.sparse { inputs[s.name] = ["dtype": "DT_INT64", "cardinality": s.cardinality] }
                for d in spec.dense { inputs[d] = ["dtype": "DT_FLOAT"] }
            case .criteo(let state):
                // Raw Criteo fields, transformed by the export's feature state as `herd predict` does.
                for j in 0..<Criteo.denseCount { inputs["I\(j + 1)"] = ["dtype": "DT_FLOAT", "transform": state.denseTransform] }
                for (c, column) in state.columns.enumerated() {
                    inputs["C\(c + 1)"] = ["dtype": "DT_STRING", "format": "hex id, up to 8 digits", "table_size": column.tableSize]
                }
            }
            return json(["model_spec": ["name": name, "version": String(m.version)],
                         "metadata": ["signature_def": ["model_type": m.export.config.kind.rawValue, "inputs": inputs,
                                                        "outputs": ["probability": ["dtype": "DT_FLOAT", "shape": [-1, 1]]]]]], .ok)
        } catch let e as ModelRegistryError {
            if case .notFound = e { return error(e.description, .notFound) }
            return error(e.description, .serviceUnavailable)
        } catch {
            return Self.error("\(error)", .badRequest)
        }
    }

    static func error(_ message: String, _ status: HTTPResponse.Status) -> Response {
        json(["error": message], status)
    }

    static func json(_ object: [String: Any], _ status: HTTPResponse.Status) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
