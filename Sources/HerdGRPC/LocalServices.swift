import Foundation
import GRPCCore
import HerdServing

/// The gRPC services of one process over an in-process `Recommender`: the Recommender service,
/// and when the recommender has local parts also Recall, Feature and Ranking over the same index,
/// store and model replicas (no copies).
public enum LocalServices {
    /// `current` gives the recommender each Recommender call answers with (default: `recommender`;
    /// a server that reloads passes its live one); the other services use `recommender`'s parts.
    /// `indexFile`: where Recall's AddItem saves the index (nil = memory only). `rawIDs`: the
    /// workspace's raw ↔ encoded ids now (for `ID_TYPE_RAW` requests; nil = refused).
    public static func all(recommender: Recommender, current: (@Sendable () -> Recommender)? = nil, admin: AdminToken, indexFile: URL? = nil,
                           rawIDs: @escaping @Sendable () -> RawIDs? = { nil },
                           onAnswer: @escaping @Sendable (Recommendation) -> Void = { _ in }) -> [any RegistrableRPCService] {
        var services: [any RegistrableRPCService] = [RecommenderService(current: current ?? { recommender }, rawIDs: rawIDs, onAnswer: onAnswer)]
        guard let context = recommender.context else { return services }
        services.append(RecallService(recall: LocalRecall(userEmbeddings: context.userEmbeddings, index: context.index), admin: admin,
                                      indexFile: indexFile, rawIDs: rawIDs()))
        services.append(FeatureService(store: context.store, rawIDs: rawIDs()))
        if let spec = context.ranking.featureState.batchSpec {
            services.append(RankingService(ranking: recommender.backends.ranking, spec: spec, kind: context.ranking.config.kind.rawValue,
                                           features: recommender.backends.features, input: recommender.rankingInput,
                                           timeout: recommender.config.defaultTimeout, rawIDs: rawIDs))
        }
        return services
    }
}
