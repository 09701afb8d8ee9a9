import GRPCCore
import HerdFeatures
import HerdServing

/// The Ranking service (`herd.v1.Ranking`), a thin adapter over a `RankingBackend`:
///
/// - `Score(rows)`: column-major typed rows with the model's columns → one probability per row;
///   INVALID_ARGUMENT for a missing column, a wrong type, malformed columns or too many rows;
/// - `Score(candidates)`: a user and item ids; the rows come from `features` (the service's
///   feature backend) assembled as the recommender does (`RankingInput`);
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
    public static let maxRows = 100_000

    public init(ranking: any RankingBackend, spec: BatchSpec, kind: String, features: (any FeatureBackend)? = nil,
                input: RankingInput? = nil, timeout: Duration = .seconds(1)) {
        self.ranking = ranking
        self.spec = spec
        self.kind = kind
        self.features = features
        self.input = input
        self.timeout = timeout
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
            guard (1...Self.maxRows).contains(c.itemIds.count) else {
                throw RPCError(code: .invalidArgument, message: "\(c.itemIds.count) candidates: send 1…\(Self.maxRows)")
            }
            let fetched: (user: FeatureRows, items: FeatureRows)
            do {
                fetched = try await offload { try features.rows(userID: c.userID, items: c.itemIds, deadline: deadline) }
            } catch {
                throw RPCError(code: .unavailable, message: "\(error)")
            }
            do {
                table = try input.table(userID: c.userID, user: fetched.user, items: fetched.items)
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
