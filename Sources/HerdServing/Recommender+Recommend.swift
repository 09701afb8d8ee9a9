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

        // Recall, or the most popular items for an unknown user (cold start) or when recall fails or
        // finds nothing; popular candidates are ranked like recalled ones (see `popularCandidates`).
        var mark = clock.now
        let recalled: Result<(ids: [Int64], scores: [Float])?, any Error>
        do {
            recalled = .success(try backends.recall.candidates(userID: userID, k: canK, deadline: deadline))
        } catch {
            recalled = .failure(error)
        }
        let candidates: Candidates
        switch recalled {
        case .success(let r?) where !r.ids.isEmpty:
            candidates = Candidates(ids: r.ids, fallbackProbs: recallProbs(r.scores), source: .recall, coldStart: false, reason: nil)
        case .success(_?):
            candidates = try popularCandidates(userID: userID, canK: canK, coldStart: false, reason: "the item index returned no candidates")
        case .success(nil):
            candidates = try popularCandidates(userID: userID, canK: canK, coldStart: true, reason: nil)
        case .failure(let error):
            candidates = try popularCandidates(userID: userID, canK: canK, coldStart: false, reason: "recall failed: \(error)")
        }
        timings.recall = seconds(clock.now - mark)
        let ids = candidates.ids

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
            return finish(fallbackAnswer(userID: userID, k: k, candidates, reason: reason, timings: timings))
        }

        // Preprocess: the ranking rows. A cold-start user without a row in the store ranks as the
        // empty user: every user column null, its id 0 (unknown), as training encoded unseen users.
        mark = clock.now
        let rows: RankingRows
        do {
            let known = !user.ids.isEmpty && user.isFound(0)
            rows = try backends.ranking.rows(rankingInput, userID: candidates.coldStart && !known ? 0 : userID, user: user, items: items)
        } catch {
            timings.preprocess = seconds(clock.now - mark)
            return finish(fallbackAnswer(userID: userID, k: k, candidates,
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
            return finish(fallbackAnswer(userID: userID, k: k, candidates, reason: "ranking failed: \(error)", timings: timings))
        }
        timings.ranking = seconds(clock.now - mark)

        // Top k (ties keep candidate order).
        mark = clock.now
        let order = Self.topK(probs, k: k)
        timings.topK = seconds(clock.now - mark)
        return finish(Recommendation(userID: userID, ids: order.map { ids[$0] }, probs: order.map { probs[$0] },
                                     source: candidates.source == .recall ? .ranked : .popular, coldStart: candidates.coldStart,
                                     degraded: candidates.reason != nil, reason: candidates.reason, candidates: ids.count, timings: timings))
    }

    /// The items one request ranks, and how to answer without ranking them.
    struct Candidates {
        var ids: [Int64]
        /// The answer's probs when features or ranking fail: descending, one per id.
        var fallbackProbs: [Float]
        /// `.recall` (ANN candidates) or `.popular`.
        var source: RecommendationSource
        var coldStart: Bool
        /// Why popular items stand in for recalled ones (recall failed or found nothing).
        var reason: String?
    }

    /// Indices of the `k` largest values, largest first; ties (and NaN, last) keep index order.
    ///
    /// NOTE: a bounded insertion (O(n·k) compares, k small) instead of sorting all n candidates;
    /// the order is a strict total order (value, then index), so it is the sorted prefix exactly
    /// (tests compare both).
    static func topK(_ values: [Float], k: Int) -> [Int] {
        let k = min(k, values.count)
        guard k > 0 else { return [] }
        func before(_ a: Int, _ b: Int) -> Bool {
            let (x, y) = (values[a], values[b])
            if x.isNaN || y.isNaN { return !x.isNaN && y.isNaN || (x.isNaN == y.isNaN && a < b) }
            return x != y ? x > y : a < b
        }
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in values.indices {
            if best.count == k {
                guard before(i, best[k - 1]) else { continue }
                best.removeLast()
            }
            var j = best.count
            best.append(i)
            while j > 0 && before(i, best[j - 1]) {
                best[j] = best[j - 1]
                j -= 1
            }
            best[j] = i
        }
        return best
    }

    /// `topK` by sorting every index: the reference.
    static func topKBySorting(_ values: [Float], k: Int) -> [Int] {
        let sorted = values.indices.sorted { a, b in
            let (x, y) = (values[a], values[b])
            if x.isNaN || y.isNaN { return !x.isNaN && y.isNaN || (x.isNaN == y.isNaN && a < b) }
            return x != y ? x > y : a < b
        }
        return Array(sorted.prefix(k))
    }

    /// The `canK` most popular items as the candidates: the cold-start answer (ranked for the user
    /// like recalled candidates), and the stand-in when recall fails or finds nothing.
    ///
    /// NOTE: Friesian has no cold-start answer (an unknown user fails recall). Ranking the popular
    /// items gives the answer the ranked answer's meaning — each prob is the model's probability of
    /// engagement for this user (or the empty user), descending — instead of mixing in a second
    /// score; popularity decides which items are candidates, the model their order.
    func popularCandidates(userID: Int64, canK: Int, coldStart: Bool, reason: String?) throws -> Candidates {
        let p = popular
        guard !p.ids.isEmpty else {
            throw RecommenderError.unavailable(reason.map { "\($0), and there are no popular items to fall back to" }
                ?? "user \(userID) has no embedding and there are no popular items to fall back to")
        }
        let n = min(canK, p.ids.count)
        return Candidates(ids: Array(p.ids.prefix(n)), fallbackProbs: Array(p.scores.prefix(n)), source: .popular,
                          coldStart: coldStart, reason: reason)
    }

    /// Recall scores mapped to (0, 1) by a sigmoid (of the negated distance for L2): same order.
    func recallProbs(_ scores: [Float]) -> [Float] {
        let sign: Float = backends.recall.metric == .l2 ? -1 : 1
        return scores.map { Kernels.sigmoid(sign * $0) }
    }

    /// The first `k` candidates in their own order (recall's, or popularity's) with their fallback
    /// probs: the answer when features or ranking fail.
    func fallbackAnswer(userID: Int64, k: Int, _ c: Candidates, reason: String, timings: StageTimings) -> Recommendation {
        let n = min(k, c.ids.count)
        return Recommendation(userID: userID, ids: Array(c.ids.prefix(n)), probs: Array(c.fallbackProbs.prefix(n)), source: c.source,
                              coldStart: c.coldStart, degraded: true, reason: c.reason.map { "\($0); \(reason)" } ?? reason,
                              candidates: c.ids.count, timings: timings)
    }
}

/// A duration in seconds.
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
