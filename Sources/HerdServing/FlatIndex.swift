import Foundation
import HerdTensor

/// The exact index (`Flat`): every vector is scored.
///
/// A batch of queries is scored against blocks of `blockRows` stored vectors with one SGEMM each
/// (`S[B, blk] = Q[B, D] · Xᵀ`), then a partial top-k selection keeps the `k` best per query; for L2
/// the ranking key is `2⟨q, x⟩ − ‖x‖²` (the `‖q‖²` term is the same for every candidate and is
/// added back at the end).
///
/// NOTE: blocks keep the score tile in cache between the GEMM and the selection; without them a
/// 1M-item index would materialise a `[B, 1M]` score matrix. One query (the serving path) is a
/// matrix-vector product, where a GEMM call per block mostly packs operands: it is scanned by
/// `SIMDKernels.dots` instead (four rows per query load, blocks of `scanBlock` rows, on every core
/// for a large index), bound by the memory bandwidth of reading the vectors once.
public final class FlatIndex: ANNIndex, @unchecked Sendable {
    public let dimension: Int
    public let metric: ANNMetric
    public var spec: String { "Flat" }
    static let blockRows = 4096

    private let lock = ReadWriteLock()
    private var vectors: [Float] = []  // [N, D]
    private var ids: [Int64] = []      // [N]
    private var norms: [Float] = []    // [N] ‖x‖², for L2
    private var position: [Int64: Int] = [:]

    public init(dimension: Int, metric: ANNMetric) {
        self.dimension = dimension
        self.metric = metric
    }

    public var count: Int { lock.read { ids.count } }

    public func add(ids newIds: UnsafeBufferPointer<Int64>, vectors v: UnsafeBufferPointer<Float>) throws {
        let d = dimension
        guard v.count == newIds.count * d else {
            throw ServingError("add: \(newIds.count) ids need \(newIds.count * d) floats, got \(v.count)")
        }
        lock.write {
            vectors.reserveCapacity(vectors.count + v.count)
            for (r, id) in newIds.enumerated() {
                let row = UnsafeBufferPointer(rebasing: v[(r * d)..<((r + 1) * d)])
                let norm = SIMDKernels.squaredNorm(row.baseAddress!, d)
                if let p = position[id] {
                    vectors.withUnsafeMutableBufferPointer { dst in
                        _ = UnsafeMutableBufferPointer(rebasing: dst[(p * d)..<((p + 1) * d)]).initialize(from: row)
                    }
                    norms[p] = norm
                } else {
                    position[id] = ids.count
                    ids.append(id)
                    vectors.append(contentsOf: row)
                    norms.append(norm)
                }
            }
        }
    }

    public func search(_ query: UnsafePointer<Float>, k: Int, ids out: UnsafeMutablePointer<Int64>, scores: UnsafeMutablePointer<Float>) -> Int {
        guard k > 0 else { return 0 }
        return lock.read {
            let n = ids.count, d = dimension
            guard n > 0 else { return 0 }
            // NOTE: a large index is scanned in one contiguous part per core (each with its own
            // top k, merged in part order, so ties resolve as in one scan: the earlier row first).
            let parts = n * d >= Self.parallelScanFloats ? min(Parallel.threads, max(1, n / Self.scanBlock)) : 1
            let ranges = Parallel.ranges(n, parts: parts)
            var tops = [TopK](repeating: TopK(k: k), count: ranges.count)
            tops.withUnsafeMutableBufferPointer { t in
                let box = UncheckedSendable(t)
                Parallel.forEach(ranges.count) { p in scan(query, rows: ranges[p], into: &box.value[p]) }
            }
            var top = tops[0]
            for p in 1..<tops.count {
                for i in 0..<tops[p].count { top.push(tops[p].keys[i], tops[p].ids[i]) }
            }
            let qn = metric == .l2 ? SIMDKernels.squaredNorm(query, d) : 0
            for i in 0..<top.count {
                out[i] = top.ids[i]
                scores[i] = metric == .l2 ? max(0, qn - top.keys[i]) : top.keys[i]
            }
            return top.count
        }
    }

    /// Rows per block of a single-query scan (the block's scores stay in L1 for the selection).
    static let scanBlock = 256
    /// Index size (`N·D` floats) from which a single query is scanned on every core.
    static let parallelScanFloats = 1 << 21

    /// Pushes the ranking key of every row of `rows` for `q` into `top`: `⟨q, x⟩` (inner product) or
    /// `2⟨q, x⟩ − ‖x‖²` (L2). Call under the read lock.
    private func scan(_ q: UnsafePointer<Float>, rows: Range<Int>, into top: inout TopK) {
        let d = dimension, blk = Self.scanBlock, l2 = metric == .l2
        vectors.withUnsafeBufferPointer { x in
            norms.withUnsafeBufferPointer { norm in
                ids.withUnsafeBufferPointer { id in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: blk) { s in
                        var start = rows.lowerBound
                        while start < rows.upperBound {
                            let count = min(blk, rows.upperBound - start)
                            SIMDKernels.dots(query: q, rows: x.baseAddress! + start * d, count: count, dimension: d,
                                             scale: l2 ? 2 : 1, into: s.baseAddress!)
                            if l2 {
                                for j in 0..<count { top.push(s[j] - norm[start + j], id[start + j]) }
                            } else {
                                for j in 0..<count { top.push(s[j], id[start + j]) }
                            }
                            start += count
                        }
                    }
                }
            }
        }
    }

    public func search(batch queries: UnsafeBufferPointer<Float>, k: Int) throws -> ANNResults {
        let d = dimension
        guard queries.count % d == 0 else {
            throw ServingError("search: \(queries.count) query values are not a multiple of the dimension \(d)")
        }
        let b = queries.count / d
        guard k > 0, b > 0 else { return ANNResults(queries: b, k: max(k, 0)) }
        let chunk = 64
        let chunks = (b + chunk - 1) / chunk
        var parts = [ANNResults?](repeating: nil, count: chunks)
        let box = UncheckedSendable(queries)
        lock.read {
            parts.withUnsafeMutableBufferPointer { partsBuffer in
                let out = UncheckedSendable(partsBuffer)
                Parallel.forEach(chunks) { c in
                    let rows = (c * chunk)..<min(b, (c + 1) * chunk)
                    var r = ANNResults(queries: rows.count, k: k)
                    scoreBlock(UnsafeBufferPointer(rebasing: box.value[(rows.lowerBound * d)..<(rows.upperBound * d)]), k: k, into: &r)
                    out.value[c] = r
                }
            }
        }
        var results = ANNResults(queries: b, k: k)
        for (c, part) in parts.enumerated() {
            let p = part!
            results.ids.replaceSubrange((c * chunk * k)..<(c * chunk * k + p.ids.count), with: p.ids)
            results.scores.replaceSubrange((c * chunk * k)..<(c * chunk * k + p.scores.count), with: p.scores)
        }
        return results
    }

    /// Scores `q[B, D]` against every stored vector, block by block. Call under the read lock.
    private func scoreBlock(_ q: UnsafeBufferPointer<Float>, k: Int, into result: inout ANNResults) {
        let d = dimension, n = ids.count, b = q.count / d
        guard n > 0 else { return }
        let blk = Self.blockRows
        var tile = [Float](repeating: 0, count: b * min(blk, n))
        var tops = (0..<b).map { _ in TopK(k: k) }
        let l2 = metric == .l2
        vectors.withUnsafeBufferPointer { x in
            tile.withUnsafeMutableBufferPointer { t in
                var start = 0
                while start < n {
                    let rows = min(blk, n - start)
                    gemm(.none, .transposed, m: b, n: rows, k: d, alpha: l2 ? 2 : 1, a: q.baseAddress!, lda: d,
                         b: x.baseAddress! + start * d, ldb: d, c: t.baseAddress!, ldc: rows)
                    for r in 0..<b {
                        let row = t.baseAddress! + r * rows
                        if l2 {
                            for j in 0..<rows { tops[r].push(row[j] - norms[start + j], ids[start + j]) }
                        } else {
                            for j in 0..<rows { tops[r].push(row[j], ids[start + j]) }
                        }
                    }
                    start += rows
                }
            }
        }
        for r in 0..<b {
            let qn = l2 ? SIMDKernels.squaredNorm(q.baseAddress! + r * d, d) : 0
            for i in 0..<tops[r].count {
                result.ids[r * k + i] = tops[r].ids[i]
                result.scores[r * k + i] = l2 ? max(0, qn - tops[r].keys[i]) : tops[r].keys[i]
            }
        }
    }

    // MARK: Persistence

    public func save(to url: URL) throws {
        try lock.read {
            let n = ids.count
            let header = ANNIndexFile.Header(
                formatVersion: ANNIndexFile.formatVersion, kind: "flat", spec: spec, dimension: dimension, metric: metric,
                count: n, payloadBytes: n * 8 + n * dimension * 4)
            try ANNIndexFile.write(to: url, header: header) { w in
                try w.array(ids)
                try w.array(vectors)
            }
        }
    }

    static func load(_ header: ANNIndexFile.Header, _ payload: ANNIndexFile.PayloadReader) throws -> FlatIndex {
        let index = FlatIndex(dimension: header.dimension, metric: header.metric)
        let ids = try payload.array(Int64.self, count: header.count)
        let vectors = try payload.array(Float.self, count: header.count * header.dimension)
        try index.add(ids: ids, vectors: vectors)
        return index
    }
}
