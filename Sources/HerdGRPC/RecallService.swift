import Foundation
import GRPCCore
import HerdServing

/// The Recall service (`herd.v1.Recall`), a thin adapter over the item index and the user
/// embeddings:
///
/// - `Search(user_id | vector, k)` → ids and scores, best first; NOT_FOUND for a user without an
///   embedding; INVALID_ARGUMENT for k outside 1…10000, no query, or a vector of another dimension;
/// - `AddItem(item_id, embedding)` → adds or replaces the item in the live index (admin token),
///   then saves the index to `indexFile` when given (as `POST /admin/items` does);
/// - `Info` → spec, dimension, metric, counts.
///
/// `id_type = ID_TYPE_RAW` searches for the user `raw_user_id` (mapped through `rawIDs`) and
/// answers `raw_ids` beside `ids`.
public struct RecallService: Herd_V1_Recall.ServiceProtocol {
    public let recall: LocalRecall
    public let admin: AdminToken
    /// Where the index is saved after each add (nil = the add lives in memory only).
    public let indexFile: URL?
    /// The workspace's raw ↔ encoded ids (nil: raw requests are refused).
    public let rawIDs: RawIDs?
    public static let maxK = RecommenderConfig.maxCanK

    public init(recall: LocalRecall, admin: AdminToken, indexFile: URL? = nil, rawIDs: RawIDs? = nil) {
        self.recall = recall
        self.admin = admin
        self.indexFile = indexFile
        self.rawIDs = rawIDs
    }

    public func search(request: ServerRequest<Herd_V1_SearchRequest>, context: ServerContext) async throws -> ServerResponse<Herd_V1_SearchResponse> {
        let m = request.message
        guard (1...Self.maxK).contains(Int(m.k)) else {
            throw RPCError(code: .invalidArgument, message: "k = \(m.k): ask for 1…\(Self.maxK) items")
        }
        let k = Int(m.k), recall = self.recall
        let found: (ids: [Int64], scores: [Float])
        let raw = m.idType == .raw
        let query: Herd_V1_SearchRequest.OneOf_Query?
        switch try requestedUser(idType: m.idType, encoded: m.userID, raw: m.rawUserID, ids: rawIDs) {
        case .raw(let text, 0): throw RPCError(code: .notFound, message: "the raw user id '\(text)' is not in the workspace's pipeline")
        case .raw(_, let id): query = .userID(id)
        case .encoded: query = m.query
        }
        switch query {
        case .userID(let id)?:
            // NOTE: the local recall runs to the end (no deadline to honour in process).
            guard let r = try await offload({ try recall.candidates(userID: id, k: k, deadline: .now + .seconds(1)) }) else {
                throw RPCError(code: .notFound, message: "user \(id) has no embedding")
            }
            found = r
        case .vector(let v)?:
            guard v.values.count == recall.index.dimension else {
                throw RPCError(code: .invalidArgument, message: "the query vector has \(v.values.count) values, the index dimension is \(recall.index.dimension)")
            }
            guard v.values.allSatisfy(\.isFinite) else { throw RPCError(code: .invalidArgument, message: "the query vector has a NaN or infinite value") }
            found = try await offload { try recall.index.search(v.values, k: k) }
        case nil:
            throw RPCError(code: .invalidArgument, message: "give user_id or vector")
        }
        var out = Herd_V1_SearchResponse()
        out.ids = found.ids
        out.scores = found.scores
        out.metric = Herd_V1_IndexMetric(recall.index.metric)
        if raw, let rawIDs { out.rawIds = rawIDs.rawItems(found.ids) }
        return ServerResponse(message: out)
    }

    public func addItem(request: ServerRequest<Herd_V1_AddItemRequest>, context: ServerContext) async throws -> ServerResponse<Herd_V1_AddItemResponse> {
        try admin.check(request.metadata, operation: "AddItem")
        let m = request.message, index = recall.index
        guard m.embedding.count == index.dimension else {
            throw RPCError(code: .invalidArgument, message: "the embedding has \(m.embedding.count) values, the index dimension is \(index.dimension)")
        }
        guard m.embedding.allSatisfy(\.isFinite) else { throw RPCError(code: .invalidArgument, message: "the embedding has a NaN or infinite value") }
        let file = indexFile
        do {
            try await offload {
                try index.add(ids: [m.itemID], vectors: m.embedding)
                if let file { try index.save(to: file) }
            }
        } catch {
            throw RPCError(code: .failedPrecondition, message: "the index refused the item: \(error)")
        }
        var out = Herd_V1_AddItemResponse()
        out.indexCount = Int64(index.count)
        return ServerResponse(message: out)
    }

    public func info(request: ServerRequest<Herd_V1_RecallInfoRequest>, context: ServerContext) async throws -> ServerResponse<Herd_V1_RecallInfo> {
        var out = Herd_V1_RecallInfo()
        out.spec = recall.index.spec
        out.dimension = Int32(recall.index.dimension)
        out.metric = Herd_V1_IndexMetric(recall.index.metric)
        out.count = Int64(recall.index.count)
        out.users = Int64(recall.userEmbeddings.count)
        return ServerResponse(message: out)
    }
}

extension Herd_V1_IndexMetric {
    init(_ m: ANNMetric) {
        self = m == .l2 ? .l2 : .innerProduct
    }

    var metric: ANNMetric? {
        switch self {
        case .innerProduct: return .innerProduct
        case .l2: return .l2
        default: return nil
        }
    }
}
