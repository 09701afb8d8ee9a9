import GRPCCore
import HerdFeatures
import HerdServing

/// The Ranking service (`herd.v1.Ranking`), a thin adapter over a `RankingBackend`:
///
/// - `Score(rows)`: column-major typed rows with the model's columns → one probability per row;
///   INVALID_ARGUMENT for a missing column, a wrong type, malformed columns or too many rows;
/// - `Score(candidates)`: a user and item ids; the rows come from `features` (the service's
///   feature backend) assembled as the recommender does (`RankingInput`); `id_type = ID_TYPE_RAW`
///   takes `raw_user_id` and `raw_item_ids`, mapped through `rawIDs` (unknown ones encoded 0);
/// - `Info`: the model kind and its input columns.
public struct RankingService: Herd_V1_Ranking.SimpleServiceProtocol {
    public let ranking: any RankingBackend
    /// The export's batch spec (labels included: `Info` reports them).
    public let spec: BatchSpec
    public let kind: String
    /// For `Score(candidates)`; nil = only rows are scored (FAILED_PRECONDITION otherwise).
    public let features: (any FeatureBackend)?
    public let input: RankingInput?
    public let timeout: Duration
    /// The workspace's raw ↔ encoded ids now (for `ID_TYPE_RAW` candidates; nil = refused).
    public let rawIDs: @Sendable () -> RawIDs?
    public static let maxRows = 100_000

    public init(ranking: any RankingBackend, spec: BatchSpec, kind: String, features: (any FeatureBackend)? = nil,
                input: RankingInput? = nil, timeout: Duration = .seconds(1), rawIDs: @escaping @Sendable () -> RawIDs? = { nil }) {
        self.ranking = ranking
        self.spec = spec
        self.kind = kind
        self.features = features
        self.input = input
        self.timeout = timeout
        self.rawIDs = rawIDs
    }

    /// The encoded user and item ids of `c` (`id_type`; raw ids mapped, unknown ones 0).
    func encodedIDs(_ c: Herd_V1_Candidates) throws -> (user: Int64, items: [Int64]) {
        switch c.idType {
        case .unspecified, .encoded:
            return (c.userID, c.itemIds)
        case .raw:
            guard let ids = rawIDs(), ids.mapsUsers, ids.mapsItems else {
                throw RPCError(code: .invalidArgument, message: "this workspace's ids were not encoded by its pipeline: send encoded ids (user_id, item_ids), not raw ones")
            }
            guard !c.rawUserID.isEmpty else { throw RPCError(code: .invalidArgument, message: "the raw user id is empty") }
            return (ids.userID(raw: c.rawUserID) ?? 0, c.rawItemIds.map { ids.itemID(raw: $0) ?? 0 })
        case .UNRECOGNIZED(let v):
            throw RPCError(code: .invalidArgument, message: "id_type \(v) is neither ID_TYPE_ENCODED nor ID_TYPE_RAW")
        }
    }

    public func score(request: Herd_V1_ScoreRequest, context: ServerContext) async throws -> Herd_V1_ScoreResponse {
        let deadline = ContinuousClock.now + timeout
        let table: FeatureTable
        switch request.input {
        case .rows(let rows)?:
            do {
                table = try rows.table(maxRows: Self.maxRows)
            } catch {
                throw RPCError(code: .invalidArgument, message: "\(error)")
            }
            let missing = spec.unlabelled.missingColumns(in: table, labelled: false)
            guard missing.isEmpty else {
                throw RPCError(code: .invalidArgument, message: "the rows lack the model's column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", "))")
            }
        case .candidates(let c)?:
            guard let features, let input else {
                throw RPCError(code: .failedPrecondition, message: "this Ranking service has no feature backend: send rows instead of candidates, or give it one (ranking.feature_address in the split config)")
            }
            let (userID, itemIDs) = try encodedIDs(c)
            guard (1...Self.maxRows).contains(itemIDs.count) else {
                throw RPCError(code: .invalidArgument, message: "\(itemIDs.count) candidates: send 1…\(Self.maxRows)")
            }
            let fetched: (user: FeatureRows, items: FeatureRows)
            do {
                fetched = try await offload { try features.rows(userID: userID, items: itemIDs, deadline: deadline) }
            } catch {
                throw RPCError(code: .unavailable, message: "\(error)")
            }
            do {
                table = try input.table(userID: userID, user: fetched.user, items: fetched.items)
            } catch {
                throw RPCError(code: .failedPrecondition, message: "the ranking rows could not be built from the store's rows: \(error)")
            }
        case nil:
            throw RPCError(code: .invalidArgument, message: "give rows or candidates")
        }
        let ranking = self.ranking
        var out = Herd_V1_ScoreResponse()
        do {
            out.probs = try await offload { try ranking.probabilities(table, deadline: deadline) }
        } catch let e as RPCError {
            throw e
        } catch {
            // NOTE: the batch builder refuses wrong column types (e.g. a string where ids belong).
            throw RPCError(code: .invalidArgument, message: "the rows do not fit the model: \(error)")
        }
        return out
    }

    public func info(request: Herd_V1_RankingInfoRequest, context: ServerContext) async throws -> Herd_V1_RankingInfo {
        var out = Herd_V1_RankingInfo()
        out.kind = kind
        out.sparse = spec.sparse.map { s in
            var c = Herd_V1_SparseColumn()
            c.name = s.name
            c.cardinality = Int64(s.cardinality)
            return c
        }
        out.dense = spec.dense
        out.labels = spec.labels
        return out
    }
}

extension Herd_V1_RankingInfo {
    /// The batch spec it describes.
    var batchSpec: BatchSpec {
        BatchSpec(sparse: sparse.map { BatchSpec.Sparse(name: $0.name, cardinality: Int($0.cardinality)) }, dense: dense, labels: labels)
    }
}
