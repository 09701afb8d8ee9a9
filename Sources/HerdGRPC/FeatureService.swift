import GRPCCore
import HerdServing

/// The Feature service (`herd.v1.Feature`), a thin adapter over a `FeatureStore`: typed rows of
/// user or item ids, in request order, misses marked. INVALID_ARGUMENT for no ids or more than
/// `maxIDs`; UNAVAILABLE when the store fails (its own timeouts bound the wait). `id_type =
/// ID_TYPE_RAW` takes `raw_ids` (mapped through `rawIDs`; an unknown one is a miss) and answers
/// them back in `raw_ids`, the encoded ids in `ids`.
public struct FeatureService: Herd_V1_Feature.SimpleServiceProtocol {
    public let store: any FeatureStore
    /// The workspace's raw ↔ encoded ids (nil: raw requests are refused).
    public let rawIDs: RawIDs?
    public static let maxIDs = 100_000

    public init(store: any FeatureStore, rawIDs: RawIDs? = nil) {
        self.store = store
        self.rawIDs = rawIDs
    }

    public func getUserFeatures(request: Herd_V1_FeatureIDs, context: ServerContext) async throws -> Herd_V1_FeatureRows {
        try await rows(.user, request)
    }

    public func getItemFeatures(request: Herd_V1_FeatureIDs, context: ServerContext) async throws -> Herd_V1_FeatureRows {
        try await rows(.item, request)
    }

    func rows(_ kind: EntityKind, _ request: Herd_V1_FeatureIDs) async throws -> Herd_V1_FeatureRows {
        switch request.idType {
        case .unspecified, .encoded:
            return try await rows(kind, request.ids)
        case .raw:
            guard let rawIDs, kind == .user ? rawIDs.mapsUsers : rawIDs.mapsItems else {
                throw RPCError(code: .invalidArgument, message: "this workspace's \(kind) ids were not encoded by its pipeline: send them as they are (encoded), not as raw ids")
            }
            let ids = request.rawIds.map { (kind == .user ? rawIDs.userID(raw: $0) : rawIDs.itemID(raw: $0)) ?? 0 }
            var out = try await rows(kind, ids)
            out.rawIds = request.rawIds
            return out
        case .UNRECOGNIZED(let v):
            throw RPCError(code: .invalidArgument, message: "id_type \(v) is neither ID_TYPE_ENCODED nor ID_TYPE_RAW")
        }
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
