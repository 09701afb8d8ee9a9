import Foundation
import HerdTensor

/// An inverted-file index (`IVF<nlist>,Flat`, faiss's IndexIVFFlat): k-means splits the space into
/// `nlist` cells; each vector is stored, uncompressed, in the list of its nearest centroid; a query
/// scans only the `nprobe` lists whose centroids score best.
///
/// Training runs on the first `add` (at least `nlist` vectors; at most `maxTrainingPerList · nlist`
/// of them, evenly spread, are used). Later adds go to the existing cells.
///
/// NOTE: the scan is a plain loop over contiguous list storage calling the `SIMDKernels.dot`
/// kernel — per query the work is `nlist·D` for the centroids plus `≈ nprobe·N/nlist·D` for the
/// lists, with no allocation beyond the two small top-k buffers.
public final class IVFIndex: ANNIndex, @unchecked Sendable {
    public let dimension: Int
    public let metric: ANNMetric
    public let nlist: Int
    public static let maxTrainingPerList = 64
    public static let trainingIterations = 10

    private let lock = ReadWriteLock()
    private var _nprobe: Int
    private var centroids: [Float] = []  // [nlist, D]
    private var centroidNorms: [Float] = []
    private var lists: [List]
    private var location: [Int64: Location] = [:]

    struct List {
        var ids: [Int64] = []
        var vectors: [Float] = []  // [n, D]
        var norms: [Float] = []
    }

    struct Location { var list: Int32; var row: Int32 }

    public init(dimension: Int, metric: ANNMetric, nlist: Int, nprobe: Int = 8) throws {
        guard nlist > 0 else { throw ServingError("IVF: the number of lists must be positive") }
        self.dimension = dimension
        self.metric = metric
        self.nlist = nlist
        _nprobe = max(1, min(nprobe, nlist))
        lists = Array(repeating: List(), count: nlist)
    }

    /// Lists scanned per query (1 … nlist). Settable while serving.
    public var nprobe: Int {
        get { lock.read { _nprobe } }
        set { lock.write { _nprobe = max(1, min(newValue, nlist)) } }
    }

    public var spec: String { "IVF\(nlist),Flat,nprobe=\(nprobe)" }
    public var count: Int { lock.read { location.count } }
    public var isTrained: Bool { lock.read { !centroids.isEmpty } }

    /// Trains the coarse quantizer on `vectors[n, D]` (n ≥ nlist).
    public func train(_ vectors: UnsafeBufferPointer<Float>) throws {
        let d = dimension, n = vectors.count / d
        guard n >= nlist else {
            throw ServingError("IVF\(nlist) needs at least \(nlist) vectors to train its lists, got \(n): add more items first, use fewer lists (e.g. IVF\(max(1, n / 39))) or the exact index (Flat)")
        }
        let cap = Self.maxTrainingPerList * nlist
        var sample: [Float]
        if n > cap {
            sample = [Float](repeating: 0, count: cap * d)
            for i in 0..<cap {
                let r = Int((Double(i) + 0.5) * Double(n) / Double(cap))
                for j in 0..<d { sample[i * d + j] = vectors[r * d + j] }
            }
        } else {
            sample = Array(vectors)
        }
        let m = sample.count / d
        let c = sample.withUnsafeBufferPointer {
            KMeans.train($0.baseAddress!, n: m, d: d, k: nlist, iterations: Self.trainingIterations, seed: 1234, spherical: metric == .innerProduct)
        }
        lock.write {
            centroids = c
            centroidNorms = (0..<nlist).map { i in c.withUnsafeBufferPointer { SIMDKernels.squaredNorm($0.baseAddress! + i * d, d) } }
        }
    }

    public func add(ids newIds: UnsafeBufferPointer<Int64>, vectors v: UnsafeBufferPointer<Float>) throws {
        let d = dimension
        guard v.count == newIds.count * d else {
            throw ServingError("add: \(newIds.count) ids need \(newIds.count * d) floats, got \(v.count)")
        }
        if newIds.isEmpty { return }
        if !isTrained { try train(v) }
        let cells = lock.read { KMeans.assign(v.baseAddress!, n: newIds.count, d: d, centroids: centroids, metric: metric) }
        lock.write {
            for (r, id) in newIds.enumerated() {
                if let old = location[id] { remove(old) }
                let c = Int(cells[r])
                let row = UnsafeBufferPointer(rebasing: v[(r * d)..<((r + 1) * d)])
                location[id] = Location(list: Int32(c), row: Int32(lists[c].ids.count))
                lists[c].ids.append(id)
                lists[c].vectors.append(contentsOf: row)
                lists[c].norms.append(SIMDKernels.squaredNorm(row.baseAddress!, d))
            }
        }
    }

    /// Removes the entry at `loc` by moving the list's last entry into its place. Under the write lock.
    private func remove(_ loc: Location) {
        let c = Int(loc.list), r = Int(loc.row), d = dimension
        let last = lists[c].ids.count - 1
        if r != last {
            let moved = lists[c].ids[last]
            lists[c].ids[r] = moved
            lists[c].norms[r] = lists[c].norms[last]
            for j in 0..<d { lists[c].vectors[r * d + j] = lists[c].vectors[last * d + j] }
            location[moved] = Location(list: Int32(c), row: Int32(r))
        }
        lists[c].ids.removeLast()
        lists[c].norms.removeLast()
        lists[c].vectors.removeLast(d)
    }

    public func search(_ q: UnsafePointer<Float>, k: Int, ids out: UnsafeMutablePointer<Int64>, scores: UnsafeMutablePointer<Float>) -> Int {
        guard k > 0 else { return 0 }
        let d = dimension, l2 = metric == .l2
        return lock.read { () -> Int in
            guard !centroids.isEmpty else { return 0 }
            var probes = TopK(k: _nprobe)
            centroids.withUnsafeBufferPointer { c in
                for i in 0..<nlist {
                    let s = SIMDKernels.dot(q, c.baseAddress! + i * d, d)
                    probes.push(l2 ? 2 * s - centroidNorms[i] : s, Int64(i))
                }
            }
            var top = TopK(k: k)
            for p in 0..<probes.count {
                let list = Int(probes.ids[p])
                lists[list].vectors.withUnsafeBufferPointer { x in
                    lists[list].ids.withUnsafeBufferPointer { ids in
                        let base = x.baseAddress
                        if l2 {
                            lists[list].norms.withUnsafeBufferPointer { norms in
                                for j in 0..<ids.count { top.push(2 * SIMDKernels.dot(q, base! + j * d, d) - norms[j], ids[j]) }
                            }
                        } else {
                            for j in 0..<ids.count { top.push(SIMDKernels.dot(q, base! + j * d, d), ids[j]) }
                        }
                    }
                }
            }
            let qn = l2 ? SIMDKernels.squaredNorm(q, d) : 0
            for i in 0..<top.count {
                out[i] = top.ids[i]
                scores[i] = l2 ? max(0, qn - top.keys[i]) : top.keys[i]
            }
            return top.count
        }
    }

    public func search(batch queries: UnsafeBufferPointer<Float>, k: Int) throws -> ANNResults {
        try searchEach(queries, k: k)
    }

    /// List sizes (for diagnostics and tests).
    public var listSizes: [Int] { lock.read { lists.map(\.ids.count) } }

    // MARK: Persistence
    //
    // Payload: nprobe UInt64, centroids F32 [nlist, D] (absent when untrained: trained flag UInt64
    // first), then per list: count UInt64, ids I64 [count], vectors F32 [count, D].

    public func save(to url: URL) throws {
        try lock.read {
            let d = dimension
            let trained = !centroids.isEmpty
            var bytes = 16 + (trained ? nlist * d * 4 : 0)
            for l in lists { bytes += 8 + l.ids.count * 8 + l.vectors.count * 4 }
            let header = ANNIndexFile.Header(
                formatVersion: ANNIndexFile.formatVersion, kind: "ivf", spec: "IVF\(nlist),Flat,nprobe=\(_nprobe)",
                dimension: d, metric: metric, count: location.count, payloadBytes: bytes)
            try ANNIndexFile.write(to: url, header: header) { w in
                try w.scalar(UInt64(_nprobe))
                try w.scalar(UInt64(trained ? 1 : 0))
                if trained { try w.array(centroids) }
                for l in lists {
                    try w.scalar(UInt64(l.ids.count))
                    try w.array(l.ids)
                    try w.array(l.vectors)
                }
            }
        }
    }

    static func load(_ header: ANNIndexFile.Header, nlist: Int, _ payload: ANNIndexFile.PayloadReader) throws -> IVFIndex {
        let d = header.dimension
        let nprobe = Int(try payload.scalar(UInt64.self))
        let index = try IVFIndex(dimension: d, metric: header.metric, nlist: nlist, nprobe: nprobe)
        let trained = try payload.scalar(UInt64.self) == 1
        if trained {
            index.centroids = try payload.array(Float.self, count: nlist * d)
            index.centroidNorms = (0..<nlist).map { i in index.centroids.withUnsafeBufferPointer { SIMDKernels.squaredNorm($0.baseAddress! + i * d, d) } }
        }
        for c in 0..<nlist {
            let n = Int(try payload.scalar(UInt64.self))
            try payload.need(n * (8 + 4 * d))
            let ids = try payload.array(Int64.self, count: n)
            let vectors = try payload.array(Float.self, count: n * d)
            var list = List(ids: ids, vectors: vectors, norms: [])
            list.norms = (0..<n).map { r in vectors.withUnsafeBufferPointer { SIMDKernels.squaredNorm($0.baseAddress! + r * d, d) } }
            for (r, id) in ids.enumerated() { index.location[id] = Location(list: Int32(c), row: Int32(r)) }
            index.lists[c] = list
        }
        guard index.location.count == header.count else {
            throw ServingError("\(payload.path): holds \(index.location.count) ids where the header says \(header.count) (corrupt file); rebuild it with `herd nearline`")
        }
        return index
    }
}
