import Foundation
import HerdTensor

/// How an index compares vectors.
///
/// Scores come back best first: for `.innerProduct` the score is `⟨q, x⟩` (larger is better, the
/// two-tower's cosine when both sides are unit vectors); for `.l2` it is the squared Euclidean
/// distance `‖q − x‖²` (smaller is better), as in faiss.
public enum ANNMetric: String, Sendable, Codable, CaseIterable {
    case innerProduct = "ip"
    case l2

    /// Parses `ip` / `inner_product` / `cosine` or `l2`.
    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "ip", "inner_product", "innerproduct", "dot", "cosine": self = .innerProduct
        case "l2", "euclidean": self = .l2
        default: throw ServingError("unknown metric '\(text)': use ip (inner product) or l2")
        }
    }
}

/// The results of a batch search: row-major `[B, k]` ids and scores, best first. A query with fewer
/// than `k` neighbours (a small index) is padded with id `-1` and score NaN.
public struct ANNResults: Sendable, Equatable {
    public let queries: Int
    public let k: Int
    /// `[B, k]`
    public var ids: [Int64]
    /// `[B, k]`
    public var scores: [Float]

    public init(queries: Int, k: Int) {
        self.queries = queries
        self.k = k
        ids = [Int64](repeating: -1, count: queries * k)
        scores = [Float](repeating: .nan, count: queries * k)
    }

    /// The ids of query `b` (padding dropped).
    public func ids(of b: Int) -> [Int64] { Array(ids[(b * k)..<((b + 1) * k)].prefix { $0 != -1 }) }
    /// The scores of query `b` (padding dropped).
    public func scores(of b: Int) -> [Float] { Array(scores[(b * k)..<(b * k + ids(of: b).count)]) }
}

/// A nearest-neighbour index over `D`-dimensional float vectors keyed by `Int64` ids, chosen by a
/// faiss-like spec string (`makeIndex(spec:dimension:metric:)`): `Flat` (exact), `IVF<n>,Flat`,
/// `HNSW<M>`.
///
/// Thread safety: any number of searches may run concurrently, also while another thread adds.
/// Adding an id that is already present replaces its vector (a re-run of `herd nearline` updates
/// in place).
public protocol ANNIndex: AnyObject, Sendable {
    /// The spec string this index was made from, with its current options (`HNSW32,efSearch=64`).
    var spec: String { get }
    var dimension: Int { get }
    var metric: ANNMetric { get }
    /// The number of distinct ids.
    var count: Int { get }

    /// Adds `n` vectors `vectors[n, D]` under `ids[n]`.
    func add(ids: UnsafeBufferPointer<Int64>, vectors: UnsafeBufferPointer<Float>) throws

    /// The `k` best matches of one `query[D]`, written to `ids[k]` and `scores[k]`, best first.
    /// Returns how many were found (≤ k); the rest of the buffers is left untouched.
    func search(_ query: UnsafePointer<Float>, k: Int, ids: UnsafeMutablePointer<Int64>, scores: UnsafeMutablePointer<Float>) -> Int

    /// The `k` best matches of each of `B` queries `queries[B, D]`.
    func search(batch queries: UnsafeBufferPointer<Float>, k: Int) throws -> ANNResults

    /// Writes the index to `url` atomically, with a SHA-256 over the whole file
    /// (`ANNIndexFile`); `loadIndex(from:)` reads it back.
    func save(to url: URL) throws
}

extension ANNIndex {
    /// Adds vectors given as arrays (`vectors` is `[ids.count, D]`, row-major).
    public func add(ids: [Int64], vectors: [Float]) throws {
        guard vectors.count == ids.count * dimension else {
            throw ServingError("add: \(ids.count) ids need \(ids.count * dimension) floats (\(dimension) each), got \(vectors.count)")
        }
        try ids.withUnsafeBufferPointer { i in try vectors.withUnsafeBufferPointer { v in try add(ids: i, vectors: v) } }
    }

    /// The `k` best matches of one query: ids and scores, best first.
    public func search(_ query: [Float], k: Int) throws -> (ids: [Int64], scores: [Float]) {
        guard query.count == dimension else {
            throw ServingError("search: the query has \(query.count) values, the index dimension is \(dimension)")
        }
        guard k > 0 else { return ([], []) }
        var ids = [Int64](repeating: -1, count: k)
        var scores = [Float](repeating: .nan, count: k)
        let found = query.withUnsafeBufferPointer { q in
            ids.withUnsafeMutableBufferPointer { i in
                scores.withUnsafeMutableBufferPointer { s in search(q.baseAddress!, k: k, ids: i.baseAddress!, scores: s.baseAddress!) }
            }
        }
        return (Array(ids.prefix(found)), Array(scores.prefix(found)))
    }

    /// The `k` best matches of `queries[B, D]` given as an array.
    public func search(batch queries: [Float], k: Int) throws -> ANNResults {
        try queries.withUnsafeBufferPointer { try search(batch: $0, k: k) }
    }

    /// Batch search as independent single searches spread over `Parallel` workers (indexes without
    /// a faster batch path use this).
    public func searchEach(_ queries: UnsafeBufferPointer<Float>, k: Int) throws -> ANNResults {
        guard queries.count % dimension == 0 else {
            throw ServingError("search: \(queries.count) query values are not a multiple of the dimension \(dimension)")
        }
        let b = queries.count / dimension
        var results = ANNResults(queries: b, k: k)
        guard k > 0, b > 0 else { return results }
        let d = dimension
        results.ids.withUnsafeMutableBufferPointer { ids in
            results.scores.withUnsafeMutableBufferPointer { scores in
                let box = UncheckedSendable((queries.baseAddress!, ids.baseAddress!, scores.baseAddress!))
                Parallel.forRanges(b, minPerWorker: 8) { range in
                    let (q, i, s) = box.value
                    for r in range { _ = search(q + r * d, k: k, ids: i + r * k, scores: s + r * k) }
                }
            }
        }
        return results
    }
}
