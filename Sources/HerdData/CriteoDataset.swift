import Foundation
import HerdTensor

/// A Criteo text file, transformed once into a memory-mapped binary cache and served as batches.
///
/// `open` reuses `<cacheDirectory>/<file name>.<state fingerprint>.herdcache` when its header
/// matches the source file (size and modification time), the `FeatureState`, and the requested
/// format; otherwise it parses the text once (all cores, bounded memory), transforms it and writes
/// the cache. Every epoch after that reads the mapping: no text is parsed again.
///
/// ```swift
/// let state = try FeatureState.fit(trainPath: "train.txt", config: .vocabulary(freqLimit: 3))
/// let data = try CriteoDataset.open(path: "train.txt", state: state, cacheDirectory: "cache")
/// for batch in data.batches(size: 2048, shuffle: 42, epoch: 0) { … }   // dense [B,13], 26 one-hot
/// let resumed = data.batch(at: 1234, size: 2048, seed: 42, epoch: 0)
/// ```
public final class CriteoDataset: BatchSource, @unchecked Sendable {
    /// The source text file.
    public let path: String
    /// The cache file serving the rows.
    public let cachePath: String
    /// The state the rows were transformed with.
    public let state: FeatureState
    /// True when this `open` parsed the text and wrote the cache; false when it reused one.
    public let builtCache: Bool
    private let cache: MappedCriteoCache

    /// Rows available.
    public var rows: Int { cache.rows }
    /// Malformed rows skipped when the cache was built (`OnError.skip`).
    public var skippedRows: Int { cache.header.skippedRows }
    /// Whether rows carry labels (batches of an unlabelled file have empty `labels`).
    public var labelled: Bool { cache.header.labelled }

    init(path: String, cachePath: String, state: FeatureState, builtCache: Bool, cache: MappedCriteoCache) {
        self.path = path
        self.cachePath = cachePath
        self.state = state
        self.builtCache = builtCache
        self.cache = cache
    }

    /// The cache file used for `path` under `state`; `cacheDirectory` nil means the source's
    /// directory.
    public static func cachePath(for path: String, state: FeatureState, cacheDirectory: String? = nil) -> String {
        let source = URL(fileURLWithPath: path)
        let directory = cacheDirectory.map { URL(fileURLWithPath: $0) } ?? source.deletingLastPathComponent()
        let hex = String(state.fingerprint, radix: 16)
        return directory.appendingPathComponent("\(source.lastPathComponent).\(hex).herdcache").path
    }

    /// Opens `path`, building or reusing its cache (see the type's documentation).
    ///
    /// Under `.fail` a cache that was built with skipped rows is rebuilt (and so fails on the first
    /// malformed row). Throws `HerdDataError` (missing or empty file, malformed row, I/O).
    public static func open(
        path: String, state: FeatureState, format: CriteoFormat = .auto, cacheDirectory: String? = nil,
        onError: OnError = .fail, chunkBytes: Int = CriteoReader.defaultChunkBytes
    ) throws -> CriteoDataset {
        let source = try SourceFingerprint(path: path)
        if source.size == 0 { throw HerdDataError.emptyFile(path: path) }
        let cachePath = Self.cachePath(for: path, state: state, cacheDirectory: cacheDirectory)
        let formatCode = CriteoCacheLayout.formatCode(format)
        if let cache = try? MappedCriteoCache(path: cachePath),
           cache.header.source == source, cache.header.stateFingerprint == state.fingerprint,
           cache.header.formatCode == formatCode, onError == .skip || cache.header.skippedRows == 0 {
            return CriteoDataset(path: path, cachePath: cachePath, state: state, builtCache: false, cache: cache)
        }
        try build(
            path: path, cachePath: cachePath, state: state, format: format, onError: onError,
            chunkBytes: chunkBytes, source: source, formatCode: formatCode)
        let cache: MappedCriteoCache
        do {
            cache = try MappedCriteoCache(path: cachePath)
        } catch let problem as CacheProblem {
            throw HerdDataError.invalidCache(path: cachePath, reason: problem.reason)
        }
        return CriteoDataset(path: path, cachePath: cachePath, state: state, builtCache: true, cache: cache)
    }

    private static func build(
        path: String, cachePath: String, state: FeatureState, format: CriteoFormat, onError: OnError,
        chunkBytes: Int, source: SourceFingerprint, formatCode: UInt32
    ) throws {
        try createCacheDirectory(URL(fileURLWithPath: cachePath).deletingLastPathComponent().path)
        let reader = CriteoReader(path: path, format: format, onError: onError, chunkBytes: chunkBytes)
        var writer: CriteoCacheWriter?
        do {
            let summary = try reader.read(map: { state.transformRows($0) }) { rows in
                if writer == nil { writer = try CriteoCacheWriter(path: cachePath, labelled: rows.labelled) }
                try writer!.append(rows)
            }
            try writer!.finish(
                formatCode: formatCode, skippedRows: summary.skippedRows, source: source,
                stateFingerprint: state.fingerprint)
        } catch {
            writer?.abandon()
            throw error
        }
    }

    static func createCacheDirectory(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw HerdDataError.io(path: directory, message: "cannot create cache directory: \(error.localizedDescription)")
        }
    }

    public func batch(rows indices: [Int]) -> Batch { cache.batch(rows: indices) }
    public func batch(range: Range<Int>) -> Batch { cache.batch(range: range) }
}
