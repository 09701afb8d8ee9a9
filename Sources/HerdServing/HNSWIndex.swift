import CHnswlib
import Foundation
import HerdData
import HerdTensor
import HerdTraining

/// A graph index (`HNSW<M>[,efSearch=…][,efConstruction=…]`) on hnswlib (Debian's header-only
/// `libhnswlib-dev`, through the `CHnswlib` shim).
///
/// Ids are hnswlib labels (the `Int64` bit pattern), so no id table is kept on the Swift side;
/// adding an existing id updates its vector in the graph.
public final class HNSWIndex: ANNIndex, @unchecked Sendable {
    public let dimension: Int
    public let metric: ANNMetric
    public let m: Int
    public let efConstruction: Int
    private let handle: OpaquePointer
    private let efLock = ReadWriteLock()
    private var _efSearch: Int

    public init(dimension: Int, metric: ANNMetric, m: Int = 32, efConstruction: Int = 200, efSearch: Int = 64, capacity: Int = 1024) throws {
        guard m >= 2, efConstruction >= 1, efSearch >= 1 else {
            throw ServingError("HNSW: M must be ≥ 2 and efConstruction, efSearch ≥ 1 (got M=\(m), efConstruction=\(efConstruction), efSearch=\(efSearch))")
        }
        var error = [CChar](repeating: 0, count: Int(HERD_HNSW_ERROR_SIZE))
        guard let h = herd_hnsw_create(Int32(dimension), metric == .innerProduct ? 0 : 1, max(capacity, 1), m, efConstruction, 100, &error) else {
            throw ServingError("HNSW: hnswlib could not create the index: \(message(error))")
        }
        self.dimension = dimension
        self.metric = metric
        self.m = m
        self.efConstruction = efConstruction
        _efSearch = efSearch
        handle = h
    }

    private init(handle: OpaquePointer, dimension: Int, metric: ANNMetric, m: Int, efConstruction: Int, efSearch: Int) {
        self.handle = handle
        self.dimension = dimension
        self.metric = metric
        self.m = m
        self.efConstruction = efConstruction
        _efSearch = efSearch
    }

    deinit { herd_hnsw_free(handle) }

    /// The search breadth (≥ k is used). Settable while serving.
    public var efSearch: Int {
        get { efLock.read { _efSearch } }
        set { efLock.write { _efSearch = max(1, newValue) } }
    }

    public var spec: String { "HNSW\(m),efSearch=\(efSearch),efConstruction=\(efConstruction)" }
    public var count: Int { Int(herd_hnsw_count(handle)) }

    public func add(ids: UnsafeBufferPointer<Int64>, vectors: UnsafeBufferPointer<Float>) throws {
        guard vectors.count == ids.count * dimension else {
            throw ServingError("add: \(ids.count) ids need \(ids.count * dimension) floats, got \(vectors.count)")
        }
        guard !ids.isEmpty else { return }
        var error = [CChar](repeating: 0, count: Int(HERD_HNSW_ERROR_SIZE))
        // NOTE: hnswlib's addPoint is thread-safe; building in parallel slices is how its Python
        // binding fills an index too.
        let d = dimension
        let failed = UncheckedSendable(UnsafeMutablePointer<Int>.allocate(capacity: 1))
        failed.value.pointee = 0
        defer { failed.value.deallocate() }
        // Grow once up front so the parallel adds never resize.
        if herd_hnsw_add(handle, vectors.baseAddress!, ids.baseAddress!, 1, &error) != 0 {
            throw ServingError("HNSW add failed: \(message(error))")
        }
        let rest = ids.count - 1
        if rest > 0 {
            let box = UncheckedSendable((handle, ids.baseAddress! + 1, vectors.baseAddress! + d))
            reserve(count + rest)
            Parallel.forRanges(rest, minPerWorker: 256) { range in
                let (h, i, v) = box.value
                var e = [CChar](repeating: 0, count: Int(HERD_HNSW_ERROR_SIZE))
                if herd_hnsw_add(h, v + range.lowerBound * d, i + range.lowerBound, range.count, &e) != 0 { failed.value.pointee = 1 }
            }
        }
        if failed.value.pointee != 0 { throw ServingError("HNSW add failed (out of memory?)") }
    }

    /// Makes room for `n` vectors without adding any (so concurrent adds do not all resize).
    private func reserve(_ n: Int) {
        var error = [CChar](repeating: 0, count: Int(HERD_HNSW_ERROR_SIZE))
        _ = herd_hnsw_reserve(handle, n, &error)
    }

    public func search(_ query: UnsafePointer<Float>, k: Int, ids: UnsafeMutablePointer<Int64>, scores: UnsafeMutablePointer<Float>) -> Int {
        guard k > 0 else { return 0 }
        let found = herd_hnsw_search(handle, query, k, efSearch, ids, scores, nil)
        guard found > 0 else { return 0 }
        if metric == .innerProduct { for i in 0..<found { scores[i] = 1 - scores[i] } }
        return found
    }

    /// `search` through hnswlib's own `searchKnn` (raw hnswlib distances): the reference in tests.
    func searchReference(_ query: UnsafePointer<Float>, k: Int, ef: Int, ids: UnsafeMutablePointer<Int64>, scores: UnsafeMutablePointer<Float>) -> Int {
        herd_hnsw_search_reference(handle, query, k, ef, ids, scores, nil)
    }

    /// `search` with an explicit ef (raw hnswlib distances), beside `searchReference`.
    func searchRaw(_ query: UnsafePointer<Float>, k: Int, ef: Int, ids: UnsafeMutablePointer<Int64>, scores: UnsafeMutablePointer<Float>) -> Int {
        herd_hnsw_search(handle, query, k, ef, ids, scores, nil)
    }

    public func search(batch queries: UnsafeBufferPointer<Float>, k: Int) throws -> ANNResults {
        try searchEach(queries, k: k)
    }

    // MARK: Persistence
    //
    // Payload: M, efConstruction, efSearch (UInt64 each), then hnswlib's own saveIndex bytes.

    public func save(to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let scratch = dir.appendingPathComponent(".\(url.lastPathComponent).hnswlib-\(UInt64.random(in: 0 ... .max))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var error = [CChar](repeating: 0, count: Int(HERD_HNSW_ERROR_SIZE))
        let n = count
        guard herd_hnsw_save(handle, scratch.path, &error) == 0 else {
            throw ServingError("HNSW: hnswlib could not write \(scratch.path): \(message(error))")
        }
        let graph = try MappedFile(url: scratch)
        let header = ANNIndexFile.Header(
            formatVersion: ANNIndexFile.formatVersion, kind: "hnsw", spec: spec, dimension: dimension, metric: metric,
            count: n, payloadBytes: 24 + graph.count)
        try ANNIndexFile.write(to: url, header: header) { w in
            try w.scalar(UInt64(m))
            try w.scalar(UInt64(efConstruction))
            try w.scalar(UInt64(efSearch))
            try w.bytes(graph.bytes)
        }
    }

    static func load(_ header: ANNIndexFile.Header, _ payload: ANNIndexFile.PayloadReader, url: URL) throws -> HNSWIndex {
        let m = Int(try payload.scalar(UInt64.self))
        let efc = Int(try payload.scalar(UInt64.self))
        let efs = Int(try payload.scalar(UInt64.self))
        let graph = try payload.rawBytes(payload.end - payload.offset)
        let scratch = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).load-\(UInt64.random(in: 0 ... .max))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try Data(graph).write(to: scratch)
        var error = [CChar](repeating: 0, count: Int(HERD_HNSW_ERROR_SIZE))
        guard let h = herd_hnsw_load(scratch.path, Int32(header.dimension), header.metric == .innerProduct ? 0 : 1, max(header.count, 1), &error) else {
            throw ServingError("\(url.path): hnswlib refused the graph (\(message(error))); rebuild it with `herd nearline`")
        }
        let index = HNSWIndex(handle: h, dimension: header.dimension, metric: header.metric, m: m, efConstruction: efc, efSearch: efs)
        guard index.count == header.count else {
            throw ServingError("\(url.path): the graph holds \(index.count) vectors where the header says \(header.count) (corrupt file); rebuild it with `herd nearline`")
        }
        return index
    }
}

/// The NUL-terminated message the shim wrote into `buffer`.
private func message(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
