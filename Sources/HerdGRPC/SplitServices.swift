import Foundation
import HerdFeatures
import HerdServing
import HerdTraining

/// The pieces of each split service, built from a `SplitConfig` (the CLI and the tests run them).
public enum SplitServices {
    /// The Feature service over the config's store (`redis`, else what nearline wrote).
    public static func feature(_ c: SplitConfig, log: (String) -> Void) throws -> FeatureService {
        let w = c.workspaceValue
        let spec = try c.redis ?? Recommender.nearlineStoreSpec(w)
        let store = try makeFeatureStore(spec: spec)
        log("feature: store \(store.spec)")
        return FeatureService(store: store, rawIDs: try RawIDs.load(workspace: w))
    }

    /// The Recall service over `W/embeddings/user.safetensors` and `W/serving/item.index`.
    public static func recall(_ c: SplitConfig, log: (String) -> Void) throws -> RecallService {
        let w = c.workspaceValue
        try w.require(w.embeddingTable("user"), writtenBy: "herd predict --workspace \(w.root.path) --model <two-tower> --embeddings")
        try w.require(w.itemIndex, writtenBy: "herd nearline --workspace \(w.root.path)")
        let users = try UserEmbeddings(url: w.embeddingTable("user"))
        let index = try loadIndex(from: w.itemIndex)
        guard users.dimension == index.dimension else {
            throw ServingError("user embeddings have dimension \(users.dimension), the item index \(index.dimension): embed users and items with the same two-tower export")
        }
        log("recall: \(users.count) user embeddings [\(users.dimension)], item index \(index.spec) with \(index.count) vectors")
        return RecallService(recall: LocalRecall(userEmbeddings: users, index: index), admin: AdminToken(c.adminToken), indexFile: w.itemIndex,
                             rawIDs: try RawIDs.load(workspace: w))
    }

    /// The Ranking service over the config's ranking export. With `features` (a running client of
    /// the Feature service at `ranking.feature_address`) it also scores candidates (a user and item
    /// ids), fetching their rows itself; without, rows only.
    ///
    /// NOTE: with `features` it blocks (it asks the Feature service for its schemas, waiting up to
    /// `connect_timeout_ms`); run it on a dispatch thread.
    public static func ranking(_ c: SplitConfig, features: HerdGRPCClient? = nil, log: (String) -> Void) throws -> RankingService {
        let w = c.workspaceValue
        let url = try Recommender.rankingExportURL(w, rankingModel: c.rankingModel ?? "wnd")
        let export = try ModelExport.load(from: url, precision: c.rankingPrecision)
        guard let spec = export.featureState.batchSpec else {
            throw ServingError("the ranking model \(url.path) is a Criteo-file export; rank with a feature-table export (herd train --workspace W --spec …)")
        }
        var rc = RecommenderConfig()
        if let m = c.microBatch { rc.microBatch = m }
        let pool = ModelPool(model: export.model, prepared: rc.replicas)
        log("ranking: \(export.config.kind.rawValue) (\(c.rankingPrecision.rawValue)) from \(url.path), \(spec.sparse.count) sparse + \(spec.dense.count) dense columns")
        var backend: GRPCFeatures?, input: RankingInput?
        if let features {
            let address = c.endpoint(.ranking).featureAddress ?? "(unnamed)"
            let f = try GRPCFeatures(client: features, address: address, timeout: c.connectTimeout)
            let i = RankingInput(spec: spec, userSchema: f.userSchema, itemSchema: f.itemSchema)
            log("ranking: candidates' rows from the feature service at \(address)"
                + (i.missingColumns.isEmpty ? "" : "; \(i.missingColumns.joined(separator: ", ")) in neither table: 0 (unknown)"))
            (backend, input) = (f, i)
        }
        // NOTE: raw candidates are mapped with the store's key columns (only with a feature backend).
        let rawIDs = try input.flatMap { try RawIDs.load(workspace: w, userKey: $0.userSchema.keyColumn, itemKey: $0.itemSchema.keyColumn) }
        return RankingService(ranking: LocalRanking(pool: pool, spec: spec.unlabelled, microBatch: rc.microBatch), spec: spec,
                              kind: export.config.kind.rawValue, features: backend, input: input, timeout: c.timeout, rawIDs: { rawIDs })
    }

    /// The recommender over gRPC clients of the recall, feature and ranking services; popular
    /// items come from the workspace's training table. `clients` must be running (their
    /// connections); waits up to `connect_timeout_ms` for each service to answer.
    ///
    /// NOTE: blocks (start-up calls); run it on a dispatch thread.
    public static func recommender(_ c: SplitConfig, recall: HerdGRPCClient, features: HerdGRPCClient, ranking: HerdGRPCClient,
                                   log: (String) -> Void) throws -> Recommender {
        let w = c.workspaceValue
        let r = try GRPCRecall(client: recall, timeout: c.connectTimeout)
        log("recommender: recall at \(try c.address(.recall)): \(r.info.spec), \(r.info.count) items, \(r.info.users) users")
        let f = try GRPCFeatures(client: features, address: try c.address(.feature), timeout: c.connectTimeout)
        log("recommender: features at \(f.spec): user key \(f.userSchema.keyColumn), item key \(f.itemSchema.keyColumn)")
        let k = try GRPCRanking(client: ranking, timeout: c.connectTimeout)
        log("recommender: ranking at \(try c.address(.ranking)): \(k.info.kind)")
        var config = RecommenderConfig()
        config.defaultTimeout = c.timeout
        if let m = c.microBatch { config.microBatch = m }
        let popular = try Recommender.popularItems(w, itemKey: f.itemSchema.keyColumn, labels: k.spec.labels, limit: config.popularItems)
        log("recommender: \(popular.ids.count) popular items for cold start (\(popular.origin))")
        return Recommender(backends: RecommenderBackends(recall: r, features: f, ranking: k),
                           rankingInput: RankingInput(spec: k.spec, userSchema: f.userSchema, itemSchema: f.itemSchema),
                           popular: popular, config: config, log: log)
    }
}
