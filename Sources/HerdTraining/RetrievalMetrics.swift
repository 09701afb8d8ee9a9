import Foundation
import HerdTensor

/// Top-k retrieval quality over a set of users, averaged over the users that have at least one
/// relevant (test positive) item.
///
/// For a user with relevant items P (deduplicated) and retrieved list R (best first, ≤ k):
///
/// ```
/// recall@k = |R ∩ P| / |P|
/// ndcg@k   = Σ_{j < |R|, R[j] ∈ P} 1 / log2(j + 2)   /   Σ_{j < min(|P|, k)} 1 / log2(j + 2)
/// hit@k    = 1 if R ∩ P ≠ ∅ else 0
/// ```
///
/// (binary relevance; with one held-out item per user, as in leave-one-out, recall@k = hit@k).
public struct RetrievalMetrics: Sendable, Equatable {
    public var k: Int
    /// Users averaged over (those with ≥ 1 relevant item).
    public var users: Int
    public var recall: Double
    public var ndcg: Double
    public var hitRate: Double

    public init(k: Int, users: Int, recall: Double, ndcg: Double, hitRate: Double) {
        self.k = k
        self.users = users
        self.recall = recall
        self.ndcg = ndcg
        self.hitRate = hitRate
    }
}

/// Retrieval evaluation: exact top-k by inner product, the most-popular baseline, and the metrics.
///
/// Items are rows 0 ..< I of an item embedding matrix; a relevant item without a row (an id the
/// embeddings do not cover) is given as -1: it counts in |P| but can never be retrieved.
public enum Retrieval {
    /// The `k` items with the largest inner product `⟨users[rows[q]], items[i]⟩` for each query
    /// `q`, best first (ties: the lower item index first), never an item in `exclude[q]`; fewer
    /// than `k` when fewer items remain. A query row of -1 (a user without an embedding) gets an
    /// empty list.
    ///
    /// - users: [U, E], items: [I, E] (row-major), rows: [Q] indices into `users`,
    ///   exclude: [Q] lists of item indices.
    ///
    /// NOTE: scores come from one SGEMM per block of `blockRows` queries ([B, E] × [I, E]ᵀ →
    /// [B, I], blocks in parallel), so the full [Q, I] matrix never exists; each score row is
    /// then reduced by a size-k min-heap (O(I log k)), not a full sort.
    /// `blockRows` is an upper bound (smaller for large catalogues).
    public static func topK(users: Tensor, rows: [Int], items: Tensor, k: Int, exclude: [[Int]], blockRows: Int = 128) throws -> [[Int]] {
        guard users.shape.count == 2, items.shape.count == 2, users.shape[1] == items.shape[1] else {
            throw TrainingError("retrieval: user embeddings \(users.shape) and item embeddings \(items.shape) must be [U, E] and [I, E] with the same E")
        }
        guard k >= 1 else { throw TrainingError("retrieval: k must be >= 1, got \(k)") }
        guard exclude.count == rows.count else { throw TrainingError("retrieval: \(exclude.count) exclusion lists for \(rows.count) queries") }
        let e = users.shape[1], itemCount = items.shape[0], userCount = users.shape[0]
        if let bad = rows.first(where: { $0 >= userCount || $0 < -1 }) { throw TrainingError("retrieval: user row \(bad) outside 0..<\(userCount)") }
        // NOTE: a block's score matrix is capped at 4M floats (16 MB per worker) so a large catalogue
        // shrinks the block instead of the memory growing with it.
        let block = max(1, min(blockRows, (1 << 22) / max(itemCount, 1)))
        let blocks = (rows.count + block - 1) / block
        var out = [[Int]](repeating: [], count: rows.count)
        out.withUnsafeMutableBufferPointer { o in
            let ob = UncheckedSendable(o)
            let u = UncheckedSendable(users.data), it = UncheckedSendable(UnsafePointer(items.data))
            Parallel.forEach(blocks) { b in
                let lo = b * block, hi = min(rows.count, lo + block), n = hi - lo
                let query = UnsafeMutablePointer<Float>.allocate(capacity: n * e)
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: n * itemCount)
                defer {
                    query.deallocate()
                    scores.deallocate()
                }
                for q in 0..<n {
                    let r = rows[lo + q]
                    if r >= 0 { (query + q * e).update(from: u.value + r * e, count: e) } else { (query + q * e).update(repeating: 0, count: e) }
                }
                gemm(.none, .transposed, m: n, n: itemCount, k: e, a: query, lda: e, b: it.value, ldb: e, c: scores, ldc: itemCount)
                var heap = TopKHeap(k: k)
                for q in 0..<n {
                    guard rows[lo + q] >= 0 else { continue }
                    let s = scores + q * itemCount
                    for i in exclude[lo + q] where i >= 0 && i < itemCount { s[i] = -.infinity }
                    heap.reset()
                    for i in 0..<itemCount where s[i] != -.infinity { heap.offer(score: s[i], item: i) }
                    ob.value[lo + q] = heap.sorted()
                }
            }
        }
        return out
    }

    /// The most-popular baseline: items ranked by `counts` (descending; ties: the lower index
    /// first), the first `k` not in each `exclude[q]`.
    public static func popularTopK(counts: [Int], k: Int, exclude: [[Int]]) -> [[Int]] {
        let order = counts.indices.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        return exclude.map { ex in
            let skip = Set(ex)
            var list: [Int] = []
            list.reserveCapacity(k)
            for i in order where !skip.contains(i) {
                list.append(i)
                if list.count == k { break }
            }
            return list
        }
    }

    /// recall@k, ndcg@k and hit rate of retrieved lists against relevant items (both [Q]),
    /// averaged over the queries with at least one relevant item; lists are cut at `k`.
    public static func metrics(retrieved: [[Int]], relevant: [[Int]], k: Int) throws -> RetrievalMetrics {
        guard retrieved.count == relevant.count else {
            throw TrainingError("retrieval: \(retrieved.count) retrieved lists for \(relevant.count) users")
        }
        guard k >= 1 else { throw TrainingError("retrieval: k must be >= 1, got \(k)") }
        var users = 0
        var recall = 0.0, ndcg = 0.0, hits = 0.0
        for (list, rel) in zip(retrieved, relevant) {
            var positives = Set(rel.filter { $0 >= 0 })
            let total = positives.count + rel.filter { $0 < 0 }.count
            guard total > 0 else { continue }
            users += 1
            var found = 0, dcg = 0.0
            for (j, item) in list.prefix(k).enumerated() where positives.remove(item) != nil {
                found += 1
                dcg += 1 / log2(Double(j + 2))
            }
            let ideal = (0..<min(total, k)).reduce(0.0) { $0 + 1 / log2(Double($1 + 2)) }
            recall += Double(found) / Double(total)
            ndcg += dcg / ideal
            if found > 0 { hits += 1 }
        }
        let n = Double(max(users, 1))
        return RetrievalMetrics(k: k, users: users, recall: recall / n, ndcg: ndcg / n, hitRate: hits / n)
    }
}

/// A min-heap of the best `k` (score, item) pairs seen; "better" = higher score, then lower item.
struct TopKHeap {
    let k: Int
    private var scores: [Float] = []
    private var items: [Int] = []

    init(k: Int) {
        self.k = k
        scores.reserveCapacity(k)
        items.reserveCapacity(k)
    }

    mutating func reset() {
        scores.removeAll(keepingCapacity: true)
        items.removeAll(keepingCapacity: true)
    }

    /// a worse than b.
    @inline(__always)
    private func worse(_ a: Int, _ b: Int) -> Bool { scores[a] != scores[b] ? scores[a] < scores[b] : items[a] > items[b] }

    @inline(__always)
    mutating func offer(score: Float, item: Int) {
        if scores.count < k {
            scores.append(score)
            items.append(item)
            var c = scores.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                guard worse(c, p) else { break }
                scores.swapAt(c, p)
                items.swapAt(c, p)
                c = p
            }
            return
        }
        // Replace the root (the worst kept) when the newcomer is better.
        if score < scores[0] || (score == scores[0] && item > items[0]) { return }
        scores[0] = score
        items[0] = item
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < scores.count && worse(l, m) { m = l }
            if r < scores.count && worse(r, m) { m = r }
            if m == p { break }
            scores.swapAt(p, m)
            items.swapAt(p, m)
            p = m
        }
    }

    /// The kept items, best first.
    func sorted() -> [Int] {
        scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : items[$0] < items[$1] }.map { items[$0] }
    }
}
