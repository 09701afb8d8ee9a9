import Foundation
import HerdServing
import HerdTensor
import HerdTraining

/// The JSON config of the split services (`herd serve feature|recall|ranking|recommender --config FILE`).
/// One file can serve all four; each service reads its own section and the others' addresses:
///
/// ```json
/// {
///   "workspace": "/data/w",
///   "host": "127.0.0.1",
///   "admin_token": "change-me",
///   "redis": "redis://127.0.0.1:6379/herd:",
///   "ranking_model": "wnd",
///   "timeout_ms": 1000,
///   "connect_timeout_ms": 10000,
///   "micro_batch": 256,
///   "feature":     {"port": 8982},
///   "recall":      {"port": 8983},
///   "ranking":     {"port": 8984, "feature_address": "127.0.0.1:8982"},
///   "recommender": {"port": 8980, "http_port": 8080}
/// }
/// ```
///
/// `ranking.feature_address` (optional) gives the ranking service a Feature service to fetch rows
/// from, so that `Score(candidates)` (a user and item ids) works; without it the ranking service
/// scores rows only (FAILED_PRECONDITION for candidates, saying so).
///
/// A section's `address` (`host:port`) is where the recommender reaches that service; by default
/// its `host` (or the top-level `host`) and `port`. Services bind to loopback unless `host` says
/// otherwise (`0.0.0.0` for remote clients). Without `redis`, the feature service opens the store
/// `herd nearline` wrote into the workspace.
public struct SplitConfig: Codable, Sendable, Equatable {
    public struct Endpoint: Codable, Sendable, Equatable {
        public var host: String?
        /// gRPC port (0 = any free port, printed once listening).
        public var port: Int?
        /// The recommender's HTTP port.
        public var httpPort: Int?
        /// Where the recommender reaches this service (`host:port`).
        public var address: String?
        /// The ranking service's Feature service (`host:port`), for `Score(candidates)`.
        public var featureAddress: String?

        public init(host: String? = nil, port: Int? = nil, httpPort: Int? = nil, address: String? = nil, featureAddress: String? = nil) {
            self.host = host
            self.port = port
            self.httpPort = httpPort
            self.address = address
            self.featureAddress = featureAddress
        }

        enum CodingKeys: String, CodingKey {
            case host, port, address
            case httpPort = "http_port", featureAddress = "feature_address"
        }
    }

    public var workspace: String
    public var host: String?
    /// Token of admin operations (gRPC AddItem, HTTP admin routes): `authorization: Bearer TOKEN`.
    public var adminToken: String?
    /// Redis feature store URL (`redis://host:port[/prefix]`); nil = the store nearline wrote.
    public var redis: String?
    public var rankingModel: String?
    /// Per-request deadline of the recommender (feature and ranking calls), milliseconds.
    public var timeoutMs: Int?
    /// How long the recommender waits at start for the other services, milliseconds.
    public var connectTimeoutMs: Int?
    public var microBatch: Int?
    /// GEMM precision of the ranking model, `fp32` (default) or `bf16` (`RecommenderConfig.rankingPrecision`).
    public var precision: String?
    public var feature: Endpoint?
    public var recall: Endpoint?
    public var ranking: Endpoint?
    public var recommender: Endpoint?

    public init(workspace: String) { self.workspace = workspace }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case workspace, host, redis, feature, recall, ranking, recommender
        case adminToken = "admin_token", rankingModel = "ranking_model", timeoutMs = "timeout_ms"
        case connectTimeoutMs = "connect_timeout_ms", microBatch = "micro_batch", precision
    }

    /// Default gRPC ports of the split services (and the all-in-one `--grpc-port`: 8980).
    public static let defaultPorts: [SplitRole: Int] = [.recommender: 8980, .feature: 8982, .recall: 8983, .ranking: 8984]
    public static let defaultHTTPPort = 8080

    /// Reads and checks a config file; unknown keys are refused (a typo would silently keep a default).
    public static func load(path: String) throws -> SplitConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw ServingError("cannot read the config file \(path)") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ServingError("\(path): not a JSON object")
        }
        let known = Set(CodingKeys.allCases.map(\.rawValue)), baseKeys: Set<String> = ["host", "port", "http_port", "address"]
        for key in object.keys where !known.contains(key) {
            throw ServingError("\(path): unknown key '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        for role in SplitRole.allCases {
            guard let section = object[role.rawValue] else { continue }
            guard let s = section as? [String: Any] else { throw ServingError("\(path): '\(role.rawValue)' must be an object") }
            let sectionKeys = role == .ranking ? baseKeys.union(["feature_address"]) : baseKeys
            for key in s.keys where !sectionKeys.contains(key) {
                throw ServingError("\(path): unknown key '\(role.rawValue).\(key)' (known: \(sectionKeys.sorted().joined(separator: ", ")))")
            }
        }
        let config: SplitConfig
        do {
            config = try JSONDecoder().decode(SplitConfig.self, from: data)
        } catch {
            throw ServingError("\(path): \(error)")
        }
        try config.validate()
        return config
    }

    public func validate() throws {
        for role in SplitRole.allCases {
            let e = endpoint(role)
            for (name, p) in [("port", e.port), ("http_port", e.httpPort)] {
                if let p, !(0...65535).contains(p) { throw ServingError("config: \(role.rawValue).\(name) = \(p), use 0…65535") }
            }
            if let a = e.address { _ = try parseAddress(a) }
            if let a = e.featureAddress {
                guard role == .ranking else { throw ServingError("config: \(role.rawValue).feature_address: only the ranking service takes a feature address") }
                _ = try parseAddress(a)
            }
        }
        if let t = timeoutMs, t <= 0 { throw ServingError("config: timeout_ms must be positive, got \(t)") }
        if let t = connectTimeoutMs, t <= 0 { throw ServingError("config: connect_timeout_ms must be positive, got \(t)") }
        if let m = microBatch, m <= 0 { throw ServingError("config: micro_batch must be positive, got \(m)") }
        if let p = precision, Precision(rawValue: p) == nil { throw ServingError("config: precision must be fp32 or bf16, got '\(p)'") }
    }

    /// `precision` read (FP32 when absent; `validate` refuses other words).
    public var rankingPrecision: Precision { precision.flatMap(Precision.init(rawValue:)) ?? .fp32 }

    public func endpoint(_ role: SplitRole) -> Endpoint {
        switch role {
        case .feature: return feature ?? Endpoint()
        case .recall: return recall ?? Endpoint()
        case .ranking: return ranking ?? Endpoint()
        case .recommender: return recommender ?? Endpoint()
        }
    }

    /// Where `role` binds.
    public func bindHost(_ role: SplitRole) -> String { endpoint(role).host ?? host ?? "127.0.0.1" }
    public func grpcPort(_ role: SplitRole) -> Int { endpoint(role).port ?? Self.defaultPorts[role]! }

    /// Where the recommender reaches `role`.
    public func address(_ role: SplitRole) throws -> String {
        let e = endpoint(role)
        if let a = e.address { return a }
        let port = grpcPort(role)
        guard port != 0 else { throw ServingError("config: \(role.rawValue) listens on port 0 (any free port): give \(role.rawValue).address for the recommender") }
        var h = bindHost(role)
        if h == "0.0.0.0" { h = "127.0.0.1" } else if h == "::" { h = "::1" }
        return h.contains(":") ? "[\(h)]:\(port)" : "\(h):\(port)"
    }

    public var timeout: Duration { .milliseconds(timeoutMs ?? 1000) }
    public var connectTimeout: Duration { .milliseconds(connectTimeoutMs ?? 10_000) }
    public var workspaceValue: Workspace { Workspace(path: workspace) }
}

/// One of the split services.
public enum SplitRole: String, Sendable, CaseIterable, Codable {
    case feature, recall, ranking, recommender
}
