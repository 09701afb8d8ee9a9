import GRPCCore
import HerdServing

/// The Recommender service (`herd.v1.Recommender`), a thin adapter over `Recommender.recommend`:
/// INVALID_ARGUMENT for a bad k / can_k, UNAVAILABLE when nothing can answer; cold start and
/// degraded answers are flags of the response. `id_type = ID_TYPE_RAW` reads `raw_user_id`
/// through the workspace's pipeline (as HTTP's `idType=raw`) and answers `raw_ids` beside `ids`.
public struct RecommenderService: Herd_V1_Recommender.SimpleServiceProtocol {
    /// The recommender to answer the next call with (a reloading server swaps it).
    public let current: @Sendable () -> Recommender
    /// The raw ↔ encoded id mapping now (nil: raw requests are refused).
    public let rawIDs: @Sendable () -> RawIDs?
    /// Called with each answer (per-stage metrics).
    public let onAnswer: @Sendable (Recommendation) -> Void

    public init(current: @escaping @Sendable () -> Recommender, rawIDs: @escaping @Sendable () -> RawIDs? = { nil },
                onAnswer: @escaping @Sendable (Recommendation) -> Void = { _ in }) {
        self.current = current
        self.rawIDs = rawIDs
        self.onAnswer = onAnswer
    }

    public init(recommender: Recommender, rawIDs: RawIDs? = nil, onAnswer: @escaping @Sendable (Recommendation) -> Void = { _ in }) {
        self.init(current: { recommender }, rawIDs: { rawIDs }, onAnswer: onAnswer)
    }

    public func recommend(request: Herd_V1_RecommendRequest, context: ServerContext) async throws -> Herd_V1_RecommendResponse {
        let k = request.k == 0 ? 10 : Int(request.k)
        let canK = request.canK == 0 ? max(50, k) : Int(request.canK)
        let recommender = current()
        let ids = request.idType == .raw ? rawIDs() : nil
        let user = try requestedUser(idType: request.idType, encoded: request.userID, raw: request.rawUserID, ids: ids)
        let answer: Recommendation
        do {
            answer = try await offload { try recommender.recommend(userID: user.encoded, k: k, canK: canK) }
        } catch {
            throw rpcError(error)
        }
        onAnswer(answer)
        var out = Herd_V1_RecommendResponse(answer)
        out.encodedUserID = user.encoded
        if let ids { out.rawIds = ids.rawItems(answer.ids) }
        return out
    }
}

/// The user of a request with an `id_type`: `encoded` as it is, or `raw` mapped through `ids`
/// (INVALID_ARGUMENT when it cannot be: no mapping, an empty raw id, an unknown id type).
func requestedUser(idType: Herd_V1_IdType, encoded: Int64, raw: String, ids: RawIDs?) throws -> RequestedUser {
    switch idType {
    case .unspecified, .encoded:
        return .encoded(encoded)
    case .raw:
        switch RawIDs.resolveUser(raw, idType: .raw, ids: ids) {
        case .success(let u): return u
        case .failure(let e): throw rpcError(e)
        }
    case .UNRECOGNIZED(let v):
        throw RPCError(code: .invalidArgument, message: "id_type \(v) is neither ID_TYPE_ENCODED nor ID_TYPE_RAW")
    }
}

extension Herd_V1_RecommendResponse {
    init(_ r: Recommendation) {
        self.init()
        ids = r.ids
        probs = r.probs
        coldStart = r.coldStart
        degraded = r.degraded
        source = switch r.source {
        case .ranked: .ranked
        case .recall: .recall
        case .popular: .popular
        }
        reason = r.reason ?? ""
        candidates = Int32(r.candidates)
        var t = Herd_V1_StageTimings()
        t.recallMs = r.timings.recall * 1000
        t.featuresMs = r.timings.features * 1000
        t.preprocessMs = r.timings.preprocess * 1000
        t.rankingMs = r.timings.ranking * 1000
        t.topKMs = r.timings.topK * 1000
        t.totalMs = r.timings.total * 1000
        timings = t
    }
}
