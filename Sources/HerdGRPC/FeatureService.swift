import GRPCCore
import HerdServing

/// The Feature service (`herd.v1.Feature`), a thin adapter over a `FeatureStore`: typed rows of
/// user or item ids, in request order, misses marked. INVALID_ARGUMENT for no ids or more than
/// `maxIDs`; UNAVAILABLE when the store fails (its own timeouts bound the wait).
public struct FeatureService: Herd_V1_Feature.SimpleServiceProtocol {
    public let store: any FeatureStore
    public static let maxIDs = 100_000

    public init(store: any FeatureStore) { self.store = store }

    public func getUserFeatures(request: Herd_V1_FeatureIDs, context: ServerContext) async throws -> Herd_V1_FeatureRows {
        try await rows(.user, request.ids)
    }

    public func getItemFeatures(request: Herd_V1_FeatureIDs, context: ServerContext) async throws -> Herd_V1_FeatureRows {
        try await rows(.item, request.ids)
    }

    func rows(_ kind: EntityKind, _ ids: [Int64]) async throws -> Herd_V1_FeatureRows {
        guard (1...Self.maxIDs).contains(ids.count) else {
            throw RPCError(code: .invalidArgument, message: "\(ids.count) ids: ask for 1…\(Self.maxIDs) per call")
        }
        let store = self.store
        do {
            return try await offload { try Herd_V1_FeatureRows(try store.get(kind: kind, ids: ids)) }
        } catch {
            throw RPCError(code: .unavailable, message: "the feature store \(store.spec) failed: \(error)")
        }
    }

    public func getSchemas(request: Herd_V1_SchemasRequest, context: ServerContext) async throws -> Herd_V1_Schemas {
        let store = self.store
        let (user, item): (FeatureSchema?, FeatureSchema?)
        do {
            (user, item) = try await offload { (try store.schema(kind: .user), try store.schema(kind: .item)) }
        } catch {
            throw RPCError(code: .unavailable, message: "the feature store \(store.spec) failed: \(error)")
        }
        guard let user, let item else {
            throw RPCError(code: .notFound, message: "the feature store \(store.spec) holds no \(user == nil ? "user" : "item") rows: run `herd nearline` first")
        }
        var out = Herd_V1_Schemas()
        out.user = Herd_V1_FeatureSchema(user)
        out.item = Herd_V1_FeatureSchema(item)
        switch store.health {
        case .healthy: out.healthy = true
        case .unhealthy(let why): out.healthReason = why
        }
        return out
    }
}
