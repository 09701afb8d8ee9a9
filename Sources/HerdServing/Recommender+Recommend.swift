import Dispatch
import Foundation
import HerdData
import HerdTensor

extension Recommender {
    /// The `k` best items for `userID` out of `canK` recalled candidates (see the type's summary).
    ///
    /// `deadline` (default: now + `config.defaultTimeout`) bounds the wait for the feature store;
    /// recall and ranking are in-process and not interrupted.
    public func recommend(userID: Int64, k: Int = 10, canK: Int = 50, deadline: ContinuousClock.Instant? = nil) throws -> Recommendation {
        try Self.validate(k: k, canK: canK)
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = deadline ?? start + config.defaultTimeout
        var timings = StageTimings()
        func finish(_ r: Recommendation) -> Recommendation {
            var r = r
            r.timings.total = seconds(clock.now - start)
            return r
        }

        // Recall.
        var mark = clock.now
        guard let query = context.userEmbeddings.vector(of: userID) else {
            timings.recall = seconds(clock.now - mark)
            return finish(try popularAnswer(userID: userID, k: k, coldStart: true, reason: nil, timings: timings))
        }
        let (ids, scores) = try context.index.search(Array(query), k: canK)
        timings.recall = seconds(clock.now - mark)
        guard !ids.isEmpty else {
            return finish(try popularAnswer(userID: userID, k: k, coldStart: false, reason: "the item index returned no candidates", timings: timings))
        }

        // Features.
        mark = clock.now
        let fetched = fetchFeatures(userID: userID, items: ids, deadline: deadline)
        timings.features = seconds(clock.now - mark)
        let user: FeatureRows, items: FeatureRows
        switch fetched {
        case .success(let rows): (user, items) = rows
        case .failure(let failure):
            noteStoreFailure(failure.reason)
            return finish(recallAnswer(userID: userID, k: k, ids: ids, scores: scores, reason: failure.reason, timings: timings))
        }

        // Preprocess: the ranking batch.
        mark = clock.now
        let batch: Batch
        do {
            batch = try rankingTable(userID: userID, user: user, items: items).batch(rankingSpec)
        } catch {
            timings.preprocess = seconds(clock.now - mark)
            return finish(recallAnswer(userID: userID, k: k, ids: ids, scores: scores,
                                       reason: "the ranking input could not be built from the store's rows: \(error)", timings: timings))
        }
        timings.preprocess = seconds(clock.now - mark)

        // Ranking.
        mark = clock.now
        let probs = pool.probabilities(batch, microBatch: config.microBatch)
        timings.ranking = seconds(clock.now - mark)

        // Top k (ties keep recall order).
        mark = clock.now
        let order = Self.topK(probs, k: k)
        timings.topK = seconds(clock.now - mark)
        return finish(Recommendation(userID: userID, ids: order.map { ids[$0] }, probs: order.map { probs[$0] }, source: .ranked,
                                     candidates: ids.count, timings: timings))
    }

    /// Indices of the `k` largest values, largest first; ties (and NaN, last) keep index order.
    static func topK(_ values: [Float], k: Int) -> [Int] {
        let sorted = values.indices.sorted { a, b in
            let (x, y) = (values[a], values[b])
            if x.isNaN || y.isNaN { return !x.isNaN && y.isNaN || (x.isNaN == y.isNaN && a < b) }
            return x != y ? x > y : a < b
        }
        return Array(sorted.prefix(k))
    }

    /// Popular items: the cold-start answer, and the fallback when nothing was recalled.
    func popularAnswer(userID: Int64, k: Int, coldStart: Bool, reason: String?, timings: StageTimings) throws -> Recommendation {
        let p = context.popular
        guard !p.ids.isEmpty else {
            throw RecommenderError.unavailable(reason.map { "\($0), and there are no popular items to fall back to" }
                ?? "user \(userID) has no embedding and there are no popular items to fall back to")
        }
        let n = min(k, p.ids.count)
        return Recommendation(userID: userID, ids: Array(p.ids.prefix(n)), probs: Array(p.rates.prefix(n)), source: .popular,
                              coldStart: coldStart, degraded: reason != nil, reason: reason, candidates: 0, timings: timings)
    }

    /// The first `k` candidates in recall order, their scores mapped to (0, 1) by a sigmoid (of the
    /// negated distance for L2): the answer when features or ranking fail.
    func recallAnswer(userID: Int64, k: Int, ids: [Int64], scores: [Float], reason: String, timings: StageTimings) -> Recommendation {
        let n = min(k, ids.count)
        let sign: Float = context.index.metric == .l2 ? -1 : 1
        return Recommendation(userID: userID, ids: Array(ids.prefix(n)), probs: scores.prefix(n).map { Kernels.sigmoid(sign * $0) },
                              source: .recall, degraded: true, reason: reason, candidates: ids.count, timings: timings)
    }

    struct FetchFailure: Error {
        let reason: String
    }

    /// The user's row and the candidates' rows, or a failure once the store throws or `deadline`
    /// passes.
    ///
    /// NOTE: the store is called on another thread and waited for with a timeout, so a store that
    /// hangs (a Redis server that accepts but does not answer) cannot hold the request past its
    /// deadline; the late call finishes in the background and its rows are dropped.
    func fetchFeatures(userID: Int64, items: [Int64], deadline: ContinuousClock.Instant) -> Result<(FeatureRows, FeatureRows), FetchFailure> {
        let store = context.store
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global(qos: .userInitiated).async {
            box.set(Result { (try store.get(kind: .user, ids: [userID]), try store.get(kind: .item, ids: items)) })
            done.signal()
        }
        let remaining = deadline - ContinuousClock.now
        let nanos = max(0, remaining.components.seconds * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000)
        if done.wait(timeout: .now() + .nanoseconds(Int(min(nanos, Int64(Int.max))))) == .timedOut {
            return .failure(FetchFailure(reason: "the feature store \(store.spec) did not answer within the deadline"))
        }
        switch box.get()! {
        case .success(let rows): return .success(rows)
        case .failure(let error): return .failure(FetchFailure(reason: "the feature store \(store.spec) failed: \(error)"))
        }
    }
}

/// The store call's result, handed from the worker thread.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<(FeatureRows, FeatureRows), any Error>?
    func set(_ v: Result<(FeatureRows, FeatureRows), any Error>) { lock.withLock { value = v } }
    func get() -> Result<(FeatureRows, FeatureRows), any Error>? { lock.withLock { value } }
}

/// A duration in seconds.
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
