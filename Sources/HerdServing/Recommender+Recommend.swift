import Dispatch
import Foundation
import HerdData
import HerdFeatures
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
        let recalled: (ids: [Int64], scores: [Float])?
        do {
            recalled = try backends.recall.candidates(userID: userID, k: canK, deadline: deadline)
        } catch {
            timings.recall = seconds(clock.now - mark)
            return finish(try popularAnswer(userID: userID, k: k, coldStart: false, reason: "recall failed: \(error)", timings: timings))
        }
        timings.recall = seconds(clock.now - mark)
        guard let (ids, scores) = recalled else {
            return finish(try popularAnswer(userID: userID, k: k, coldStart: true, reason: nil, timings: timings))
        }
        guard !ids.isEmpty else {
            return finish(try popularAnswer(userID: userID, k: k, coldStart: false, reason: "the item index returned no candidates", timings: timings))
        }

        // Features.
        mark = clock.now
        let user: FeatureRows, items: FeatureRows
        do {
            (user, items) = try backends.features.rows(userID: userID, items: ids, deadline: deadline)
            timings.features = seconds(clock.now - mark)
        } catch {
            timings.features = seconds(clock.now - mark)
            let reason = (error as? ServingError)?.description ?? "the feature backend \(backends.features.spec) failed: \(error)"
            noteStoreFailure(reason)
            return finish(recallAnswer(userID: userID, k: k, ids: ids, scores: scores, reason: reason, timings: timings))
        }

        // Preprocess: the ranking rows.
        mark = clock.now
        let rows: RankingRows
        do {
            rows = try backends.ranking.rows(rankingInput, userID: userID, user: user, items: items)
        } catch {
            timings.preprocess = seconds(clock.now - mark)
            return finish(recallAnswer(userID: userID, k: k, ids: ids, scores: scores,
                                       reason: "the ranking input could not be built from the store's rows: \(error)", timings: timings))
        }
        timings.preprocess = seconds(clock.now - mark)

        // Ranking (in process: the batch and the model forward in micro-batches).
        mark = clock.now
        let probs: [Float]
        do {
            probs = try backends.ranking.probabilities(rows, deadline: deadline)
            guard probs.count == ids.count else {
                throw ServingError("the ranking backend returned \(probs.count) probabilities for \(ids.count) candidates")
            }
        } catch {
            timings.ranking = seconds(clock.now - mark)
            return finish(recallAnswer(userID: userID, k: k, ids: ids, scores: scores, reason: "ranking failed: \(error)", timings: timings))
        }
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
        let p = popular
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
        let sign: Float = backends.recall.metric == .l2 ? -1 : 1
        return Recommendation(userID: userID, ids: Array(ids.prefix(n)), probs: scores.prefix(n).map { Kernels.sigmoid(sign * $0) },
                              source: .recall, degraded: true, reason: reason, candidates: ids.count, timings: timings)
    }
}

/// A duration in seconds.
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
