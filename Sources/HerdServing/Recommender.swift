import Foundation
import HerdFeatures
import HerdTensor
import HerdTraining

/// Everything one recommender serves from, built once and shared by all requests.
public struct ServingContext: Sendable {
    /// id → user embedding, the recall query.
    public var userEmbeddings: UserEmbeddings
    /// The item index (inner product over two-tower item embeddings).
    public var index: any ANNIndex
    /// User and item feature rows.
    public var store: any FeatureStore
    /// The ranking model (a feature-table export, e.g. Wide & Deep).
    public var ranking: ModelExport
    /// The cold-start answer.
    public var popular: PopularItems
    /// The columns of the store's user and item rows. Read from the store when nil (a store that
    /// is down at start-up then fails `Recommender.init`; `load` falls back to the workspace tables).
    public var userSchema: FeatureSchema?
    public var itemSchema: FeatureSchema?

    public init(userEmbeddings: UserEmbeddings, index: any ANNIndex, store: any FeatureStore, ranking: ModelExport,
                popular: PopularItems, userSchema: FeatureSchema? = nil, itemSchema: FeatureSchema? = nil) {
        self.userEmbeddings = userEmbeddings
        self.index = index
        self.store = store
        self.ranking = ranking
        self.popular = popular
        self.userSchema = userSchema
        self.itemSchema = itemSchema
    }
}

/// How the recommender works.
public struct RecommenderConfig: Sendable {
    /// Rows per ranking forward (Friesian's inference batch); micro-batches run concurrently.
    // NOTE: 256, not Friesian's 64: under load the requests already fill the cores, and each
    // forward repacks the weights, so fewer, larger forwards win (canK 200 on 2 cores, quiet:
    // ≈ 255 → ≈ 390 requests/s, p50 7.5 → 5.2 ms at 2 connections). canK ≤ 256 is one forward.
    public var microBatch = 256
    /// Most rows of concurrent requests ranked in one forward (`RankingBatcher`); 1 or less (the
    /// default): each request ranks alone.
    // NOTE: off by default: measured on 2 cores (BF16, canK 50, 16 connections) it did not lower
    // the CPU per request. The HTTP server runs `recommend` on dispatch's worker threads, about one
    // per core, so with one lane per core forwards never overlap a third request to coalesce;
    // with one lane (HERD_THREADS=1) requests did coalesce (≈ 1.8 per forward) but the packed BF16
    // GEMM gains nothing from 90 rows over 50 (0.68 vs 0.65 CPU ms per request). Try it where
    // more requests are in the pipeline at once (more cores, a Redis store's waits).
    public var coalesceRows = 1
    /// GEMM precision of the ranking model at serve time (`Recommender.load`, the split Ranking
    /// service). FP32 by default: see the README (Performance) for BF16's speed and how close
    /// its probabilities are.
    public var rankingPrecision: Precision = .fp32
    /// Deadline of a call that gives none.
    public var defaultTimeout: Duration = .seconds(1)
    /// Model replicas made at start (more are made under load).
    public var replicas = Parallel.threads
    /// Byte budget of the ranking model's first-layer row cache (`ModelPool`'s `rowCacheBytes`,
    /// shared by the replicas; FP32 first layers that hoist the user's columns; 0: none).
    public var rankingCacheBytes = ModelPool.defaultRowCacheBytes
    /// Whether ranking runs a request's candidate rows that are equal (every ranking feature)
    /// through the deep MLP once (`ModelPool`'s `dedupesRows`; probabilities within float rounding).
    public var rankingDedupesRows = true
    /// Popular items kept for cold start (the largest canK served to unknown users).
    public var popularItems = 1000
    /// After a store failure or timeout, `readiness` reports degraded for this long.
    public var degradedHold: Duration = .seconds(10)
    /// Allowed `k` and `canK`.
    public static let kRange = 1...1000
    public static let maxCanK = 10_000

    public init() {}
}

/// `/readyz`: whether answers are currently the full pipeline's.
public enum Readiness: Sendable, Equatable {
    case ready
    /// Answers come from a fallback (the reason: store unhealthy, recent timeouts).
    case degraded(String)
}

/// The online recommender (issue 4, Friesian's `RecommenderImpl`):
///
/// ```
/// user id ─ embedding ─ ANN search (canK) ─ candidates ┐
///            store: user row + candidate item rows ────┴─ ranking batch (export's BatchSpec)
///            ─ model forward in micro-batches ─ probabilities ─ top k
/// ```
///
/// The three stages are `RecommenderBackends`: in one process (`init(context:)`, the local
/// backends over a `ServingContext`), or Recall/Feature/Ranking services over gRPC (`HerdGRPC`,
/// `init(backends:…)`).
///
/// - unknown user (no embedding) → the `canK` most popular items ranked by the model for this user
///   (the empty user when the store has no row), `coldStart`, probs descending like a ranked answer;
/// - feature store failing or slower than the deadline → the candidates in recall order,
///   `degraded` (the answer still comes within the deadline; the slow call is abandoned);
/// - bad `k`/`canK` → `RecommenderError.invalidArgument`.
///
/// Thread safety: `recommend` may be called from any number of threads at once. The state is
/// immutable except the model pool (see `ModelPool`) and the store-failure clock (locked).
public final class Recommender: @unchecked Sendable {
    /// The in-process parts; nil for a recommender over remote services.
    public let context: ServingContext?
    public let config: RecommenderConfig
    public let backends: RecommenderBackends
    /// The cold-start answer.
    public let popular: PopularItems
    /// How each candidate's ranking row is assembled.
    public let rankingInput: RankingInput
    /// The ranking export's unlabelled batch spec: the columns each candidate row needs.
    public var rankingSpec: BatchSpec { rankingInput.spec }
    /// Ranking columns in neither the user nor the item rows (e.g. the pair feature
    /// `engagee_follows_engager`): filled with 0 = unknown for every candidate.
    public let missingRankingColumns: [String]
    public var userSchema: FeatureSchema { rankingInput.userSchema }
    public var itemSchema: FeatureSchema { rankingInput.itemSchema }
    private let failureLock = NSLock()
    private var lastStoreFailure: (at: ContinuousClock.Instant, reason: String)?

    /// Checks that the pieces fit (embedding dimensions, a feature-table ranking model) and works
    /// out where each ranking column comes from; `log` gets one line naming the missing columns.
    public convenience init(context: ServingContext, config: RecommenderConfig = RecommenderConfig(), log: (String) -> Void = { _ in }) throws {
        guard let spec = context.ranking.featureState.batchSpec else {
            throw ServingError("the ranking model is a Criteo-file export; the recommender needs a feature-table export (herd train --workspace W --spec …)")
        }
        guard context.ranking.config.kind != .twotower else {
            throw ServingError("the ranking model is a two-tower export; rank with a Wide & Deep (or DLRM/DeepFM/DCN) feature-table export and use the two-tower for recall")
        }
        guard context.userEmbeddings.dimension == context.index.dimension else {
            throw ServingError("user embeddings have dimension \(context.userEmbeddings.dimension), the item index \(context.index.dimension): embed users and items with the same two-tower export")
        }
        guard let userSchema = try context.userSchema ?? context.store.schema(kind: .user),
              let itemSchema = try context.itemSchema ?? context.store.schema(kind: .item) else {
            throw ServingError("the feature store \(context.store.spec) holds no user or item rows: run `herd nearline` first")
        }
        let pool = ModelPool(model: context.ranking.model, prepared: config.replicas, rowCacheBytes: config.rankingCacheBytes, dedupesRows: config.rankingDedupesRows)
        let backends = RecommenderBackends(
            recall: LocalRecall(userEmbeddings: context.userEmbeddings, index: context.index),
            features: LocalFeatures(store: context.store),
            ranking: LocalRanking(pool: pool, spec: spec.unlabelled, microBatch: config.microBatch, coalesceRows: config.coalesceRows))
        self.init(backends: backends, rankingInput: RankingInput(spec: spec, userSchema: userSchema, itemSchema: itemSchema),
                  popular: context.popular, config: config, context: context, log: log)
    }

    /// A recommender over any backends (e.g. gRPC clients of split services).
    public init(backends: RecommenderBackends, rankingInput: RankingInput, popular: PopularItems,
                config: RecommenderConfig = RecommenderConfig(), context: ServingContext? = nil, log: (String) -> Void = { _ in }) {
        self.context = context
        self.config = config
        self.backends = backends
        self.popular = popular
        self.rankingInput = rankingInput
        missingRankingColumns = rankingInput.missingColumns
        if !missingRankingColumns.isEmpty {
            log("recommender: ranking column\(missingRankingColumns.count > 1 ? "s" : "") \(missingRankingColumns.joined(separator: ", ")) in neither the user nor the item rows: filled with 0 (unknown) for every candidate")
        }
    }

    /// `ready`, or `degraded` while the store is unhealthy or failed within `degradedHold`.
    public var readiness: Readiness {
        if case .unhealthy(let why) = backends.features.health { return .degraded("feature store \(backends.features.spec) unhealthy: \(why)") }
        let recent = failureLock.withLock { lastStoreFailure }
        if let recent, ContinuousClock.now - recent.at < config.degradedHold { return .degraded(recent.reason) }
        return .ready
    }

    func noteStoreFailure(_ reason: String) {
        failureLock.withLock { lastStoreFailure = (ContinuousClock.now, reason) }
    }

    /// Checks `k` in 1…1000 and `canK` in k…10000.
    public static func validate(k: Int, canK: Int) throws {
        guard RecommenderConfig.kRange.contains(k) else {
            throw RecommenderError.invalidArgument("k = \(k): ask for \(RecommenderConfig.kRange.lowerBound)…\(RecommenderConfig.kRange.upperBound) items")
        }
        guard (k...RecommenderConfig.maxCanK).contains(canK) else {
            throw RecommenderError.invalidArgument("canK = \(canK): recall between k (\(k)) and \(RecommenderConfig.maxCanK) candidates")
        }
    }
}
