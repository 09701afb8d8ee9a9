import Dispatch
import Foundation
import HerdData
import HerdFeatures
import HerdLayers
import HerdTensor

/// The recall stage as the recommender sees it: in process (`LocalRecall`) or a Recall service
/// over gRPC (`HerdGRPC`).
///
/// Thread safety: called from any number of threads at once.
public protocol RecallBackend: Sendable {
    /// How scores compare (the degraded answer maps them to (0, 1) accordingly).
    var metric: ANNMetric { get }
    /// The `k` best items for the user's embedding, best first: ids and scores `[≤ k]`; nil when
    /// the user has no embedding (cold start). Throws when the backend cannot answer.
    func candidates(userID: Int64, k: Int, deadline: ContinuousClock.Instant) throws -> (ids: [Int64], scores: [Float])?
}

/// The feature stage: the user's row and the candidates' rows.
public protocol FeatureBackend: Sendable {
    /// Where the rows come from (`embedded:/w/serving/features.store`, `grpc://127.0.0.1:8082`).
    var spec: String { get }
    var health: StoreHealth { get }
    /// The rows of `userID` and of `items` (request order, misses marked). Throws (a
    /// `ServingError` saying why) when the store fails or `deadline` passes first.
    func rows(userID: Int64, items: [Int64], deadline: ContinuousClock.Instant) throws -> (user: FeatureRows, items: FeatureRows)
}

/// The ranking stage: probabilities `[rows]` of a table holding the ranking spec's columns.
public protocol RankingBackend: Sendable {
    func probabilities(_ table: FeatureTable, deadline: ContinuousClock.Instant) throws -> [Float]
    /// One request's ranking rows from the store's rows, as `input` assembles them, in the form
    /// this backend takes (default: the table, `input.table(…)`; in-process ranking builds the
    /// model's batch directly).
    func rows(_ input: RankingInput, userID: Int64, user: FeatureRows, items: FeatureRows) throws -> RankingRows
    /// Probabilities `[rows]` of what `rows(…)` gave.
    func probabilities(_ rows: RankingRows, deadline: ContinuousClock.Instant) throws -> [Float]
}

/// A request's ranking rows: a feature table (any backend) or, in process, the model's batch.
public enum RankingRows: Sendable {
    case table(FeatureTable)
    case batch(Batch)
}

extension RankingBackend {
    public func rows(_ input: RankingInput, userID: Int64, user: FeatureRows, items: FeatureRows) throws -> RankingRows {
        .table(try input.table(userID: userID, user: user, items: items))
    }

    public func probabilities(_ rows: RankingRows, deadline: ContinuousClock.Instant) throws -> [Float] {
        switch rows {
        case .table(let t): return try probabilities(t, deadline: deadline)
        case .batch: throw ServingError("this ranking backend takes feature tables, not batches")
        }
    }
}

/// The three stages a `Recommender` runs.
public struct RecommenderBackends: Sendable {
    public var recall: any RecallBackend
    public var features: any FeatureBackend
    public var ranking: any RankingBackend

    public init(recall: any RecallBackend, features: any FeatureBackend, ranking: any RankingBackend) {
        self.recall = recall
        self.features = features
        self.ranking = ranking
    }
}

/// Recall in process: user embedding lookup, then an ANN search.
public struct LocalRecall: RecallBackend {
    public let userEmbeddings: UserEmbeddings
    public let index: any ANNIndex

    public init(userEmbeddings: UserEmbeddings, index: any ANNIndex) {
        self.userEmbeddings = userEmbeddings
        self.index = index
    }

    public var metric: ANNMetric { index.metric }

    public func candidates(userID: Int64, k: Int, deadline: ContinuousClock.Instant) throws -> (ids: [Int64], scores: [Float])? {
        guard let query = userEmbeddings.vector(of: userID) else { return nil }
        return try index.search(Array(query), k: k)
    }
}

/// Features from a `FeatureStore` in process (embedded or Redis).
///
/// NOTE: a store that does not bound its own waits (`answersWithinDeadline` false) is called on
/// another thread and waited for with a timeout, so a store that hangs cannot hold the request
/// past its deadline; the late call finishes in the background and its rows are dropped. The
/// embedded and Redis stores are called in line (Redis bounds each socket wait by the deadline).
public struct LocalFeatures: FeatureBackend {
    public let store: any FeatureStore

    public init(store: any FeatureStore) { self.store = store }

    public var spec: String { store.spec }
    public var health: StoreHealth { store.health }

    public func rows(userID: Int64, items: [Int64], deadline: ContinuousClock.Instant) throws -> (user: FeatureRows, items: FeatureRows) {
        let store = self.store
        let queries = [FeatureQuery(.user, [userID]), FeatureQuery(.item, items)]
        if store.answersWithinDeadline {
            // NOTE: the embedded store answers from memory, Redis bounds every socket wait by the
            // deadline and asks for the user and the items in one round trip: no thread hop and
            // wait per request (the hop and its wake-ups cost ≈ 2 % of the CPU of a request).
            do {
                let rows = try store.get(queries, deadline: deadline)
                return (rows[0], rows[1])
            } catch {
                throw ServingError("the feature store \(store.spec) failed: \(error)")
            }
        }
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global(qos: .userInitiated).async {
            box.set(Result {
                let rows = try store.get(queries, deadline: deadline)
                return (rows[0], rows[1])
            })
            done.signal()
        }
        if done.wait(timeout: dispatchTime(deadline)) == .timedOut {
            throw ServingError("the feature store \(store.spec) did not answer within the deadline")
        }
        switch box.get()! {
        case .success(let rows): return rows
        case .failure(let error): throw ServingError("the feature store \(store.spec) failed: \(error)")
        }
    }
}

/// Ranking in process: the table's batch (`spec` columns) through a `ModelPool` in micro-batches,
/// concurrent requests' rows coalesced into shared forwards (`RankingBatcher`) unless
/// `coalesceRows` is 1 or less.
public struct LocalRanking: RankingBackend {
    public let pool: ModelPool
    /// The export's unlabelled batch spec.
    public let spec: BatchSpec
    public let microBatch: Int
    /// Coalesces concurrent requests (nil: each request ranks alone).
    public let batcher: RankingBatcher?
    /// Hits, misses and size of the ranking model's first-layer row cache (nil: none).
    public var rowCacheStats: RowContributionCache.Stats? { pool.rowCacheStats }

    public init(pool: ModelPool, spec: BatchSpec, microBatch: Int, coalesceRows: Int = RecommenderConfig().coalesceRows) {
        self.pool = pool
        self.spec = spec
        self.microBatch = microBatch
        batcher = coalesceRows > 1 ? RankingBatcher(pool: pool, maxRows: coalesceRows, microBatch: microBatch) : nil
    }

    public func probabilities(_ table: FeatureTable, deadline: ContinuousClock.Instant) throws -> [Float] {
        try probabilities(table.batch(spec), deadline: deadline)
    }

    public func rows(_ input: RankingInput, userID: Int64, user: FeatureRows, items: FeatureRows) throws -> RankingRows {
        // NOTE: the batch follows `input.spec`; another spec (not the recommender's own export) goes through the table.
        guard input.spec == spec else { return .table(try input.table(userID: userID, user: user, items: items)) }
        return .batch(try input.batch(userID: userID, user: user, items: items))
    }

    public func probabilities(_ rows: RankingRows, deadline: ContinuousClock.Instant) throws -> [Float] {
        switch rows {
        case .table(let t): return try probabilities(t, deadline: deadline)
        case .batch(let b): return try probabilities(b, deadline: deadline)
        }
    }

    /// Probabilities `[rows]` of `batch`, through the batcher when coalescing.
    public func probabilities(_ batch: Batch, deadline: ContinuousClock.Instant) throws -> [Float] {
        guard let batcher else { return pool.probabilities(batch, microBatch: microBatch) }
        return try batcher.probabilities(batch, deadline: deadline)
    }
}

/// The dispatch time of a clock instant (now when it has passed).
public func dispatchTime(_ deadline: ContinuousClock.Instant) -> DispatchTime {
    let remaining = deadline - ContinuousClock.now
    let nanos = max(0, remaining.components.seconds * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000)
    return .now() + .nanoseconds(Int(min(nanos, Int64(Int.max / 2))))
}

/// The store call's result, handed from the worker thread.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<(user: FeatureRows, items: FeatureRows), any Error>?
    func set(_ v: Result<(FeatureRows, FeatureRows), any Error>) { lock.withLock { value = v.map { (user: $0.0, items: $0.1) } } }
    func get() -> Result<(user: FeatureRows, items: FeatureRows), any Error>? { lock.withLock { value } }
}
