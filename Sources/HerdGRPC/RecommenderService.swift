import GRPCCore
import HerdServing

/// The Recommender service (`herd.v1.Recommender`), a thin adapter over `Recommender.recommend`:
/// INVALID_ARGUMENT for a bad k / can_k, UNAVAILABLE when nothing can answer; cold start and
/// degraded answers are flags of the response.
public struct RecommenderService: Herd_V1_Recommender.SimpleServiceProtocol {
    /// The recommender to answer the next call with (a reloading server swaps it).
    public let current: @Sendable () -> Recommender
    /// Called with each answer (per-stage metrics).
    public let onAnswer: @Sendable (Recommendation) -> Void

    public init(current: @escaping @Sendable () -> Recommender, onAnswer: @escaping @Sendable (Recommendation) -> Void = { _ in }) {
        self.current = current
        self.onAnswer = onAnswer
    }

    public init(recommender: Recommender, onAnswer: @escaping @Sendable (Recommendation) -> Void = { _ in }) {
        self.init(current: { recommender }, onAnswer: onAnswer)
    }

    public func recommend(request: Herd_V1_RecommendRequest, context: ServerContext) async throws -> Herd_V1_RecommendResponse {
        let k = request.k == 0 ? 10 : Int(request.k)
        let canK = request.canK == 0 ? max(50, k) : Int(request.canK)
        let recommender = current(), user = request.userID
        let answer: Recommendation
        do {
            answer = try await offload { try recommender.recommend(userID: user, k: k, canK: canK) }
        } catch {
            throw rpcError(error)
        }
        onAnswer(answer)
        return Herd_V1_RecommendResponse(answer)
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
