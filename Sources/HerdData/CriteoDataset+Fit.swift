import Foundation
import HerdTensor

extension CriteoDataset {
    /// Fits `config` on the training file `path` and builds its cache in one pass over the text;
    /// the same state and the same cache bytes as `FeatureState.fit` followed by `open`, which
    /// parse the text twice.
    ///
    /// The pass counts every categorical value and writes each row with provisional ids (values
    /// numbered in order of first appearance, 0 = missing); once the vocabularies are known, the
    /// cache's id columns are renumbered in place (`CriteoCacheWriter.remapIDs`: an array lookup
    /// per id, no hashing) and the file is renamed to the state's cache path. Memory stays
    /// bounded by the chunks of one round plus the value counts. A configuration with no
    /// vocabulary column needs no fit and goes straight to `open`.
    ///
    /// Malformed rows follow `onError` as in `FeatureState.fit`; the state's `fittedRows` and
    /// `fittedSkippedRows` record what was seen. Throws `HerdDataError`.
    public static func fitAndOpen(
        path: String, config: FeatureConfig, format: CriteoFormat = .auto, cacheDirectory: String? = nil,
        onError: OnError = .fail, chunkBytes: Int = CriteoReader.defaultChunkBytes
    ) throws -> (state: FeatureState, dataset: CriteoDataset) {
        try fitAndOpen(
            path: path, config: config, format: format, cacheDirectory: cacheDirectory, onError: onError,
            chunkBytes: chunkBytes, blockRows: CriteoCacheLayout.defaultBlockRows)
    }

    /// `fitAndOpen` with the cache's rows per block (tests use small blocks).
    static func fitAndOpen(
        path: String, config: FeatureConfig, format: CriteoFormat, cacheDirectory: String?, onError: OnError,
        chunkBytes: Int, blockRows: Int
    ) throws -> (state: FeatureState, dataset: CriteoDataset) {
        try config.validate()
        guard config.needsFit else {
            let state = try FeatureState.fit(trainPath: path, config: config, format: format, onError: onError, chunkBytes: chunkBytes)
            let dataset = try open(
                path: path, state: state, format: format, cacheDirectory: cacheDirectory, onError: onError, chunkBytes: chunkBytes)
            return (state, dataset)
        }
        let source = try SourceFingerprint(path: path)
        if source.size == 0 { throw HerdDataError.emptyFile(path: path) }
        let name = URL(fileURLWithPath: path).lastPathComponent
        let directory = cacheDirectory ?? URL(fileURLWithPath: path).deletingLastPathComponent().path
        try createCacheDirectory(directory)
        let provisionalPath = URL(fileURLWithPath: directory).appendingPathComponent("\(name).fitting.herdcache").path

        let counters: [FirstSeenCounter?] = config.columns.map {
            if case .vocabulary = $0 { return FirstSeenCounter() } else { return nil }
        }
        let reader = CriteoReader(path: path, format: format, onError: onError, chunkBytes: chunkBytes)
        var writer: CriteoCacheWriter?
        do {
            let summary = try reader.read(map: { raw in (unfittedRows(raw, config: config), raw.categorical) }) { mapped in
                var rows = mapped.0
                FirstSeenCounter.number(mapped.1, into: &rows.ids, counters: counters)
                if writer == nil {
                    writer = try CriteoCacheWriter(path: provisionalPath, labelled: rows.labelled, blockRows: blockRows)
                }
                try writer!.append(rows)
            }
            let columns: [FeatureState.ColumnEncoding] = config.columns.enumerated().map { c, column in
                switch column {
                case .hashing(let n): return .hashing(tableSize: n)
                case .vocabulary(let freqLimit): return .vocabulary(counters[c]!.counts.vocabulary(freqLimit: freqLimit))
                }
            }
            let state = FeatureState(columns: columns, fittedRows: summary.rows, fittedSkippedRows: summary.skippedRows)
            let tables: [[Int32]?] = state.columns.enumerated().map { c, column in
                guard case .vocabulary(let vocabulary) = column else { return nil }
                return counters[c]!.counts.finalIDs(vocabulary)
            }
            try writer!.remapIDs(tables)
            let cachePath = Self.cachePath(for: path, state: state, cacheDirectory: cacheDirectory)
            try writer!.finish(
                formatCode: CriteoCacheLayout.formatCode(format), skippedRows: summary.skippedRows, source: source,
                stateFingerprint: state.fingerprint, path: cachePath)
            let cache: MappedCriteoCache
            do {
                cache = try MappedCriteoCache(path: cachePath)
            } catch let problem as CacheProblem {
                throw HerdDataError.invalidCache(path: cachePath, reason: problem.reason)
            }
            return (state, CriteoDataset(path: path, cachePath: cachePath, state: state, builtCache: true, cache: cache))
        } catch {
            writer?.abandon()
            throw error
        }
    }

    /// Labels, transformed dense values and hashed ids of `raw`; the ids of vocabulary columns
    /// are left 0 (filled by `FirstSeenCounter.number`).
    private static func unfittedRows(_ raw: RawChunk, config: FeatureConfig) -> TransformedRows {
        let n = raw.count
        let dense = raw.dense.map(FeatureState.transformDense)
        var ids = [Int32](repeating: 0, count: n * Criteo.sparseCount)
        ids.withUnsafeMutableBufferPointer { out in
            raw.categorical.withUnsafeBufferPointer { cats in
                for c in 0..<Criteo.sparseCount {
                    guard case .hashing(let size) = config.columns[c] else { continue }
                    FeatureState.hashColumn(cats, column: c, rows: n, size: size, into: out.baseAddress! + c * n)
                }
            }
        }
        return TransformedRows(labels: raw.labels, dense: dense, ids: ids, labelled: raw.labelled)
    }
}

/// One categorical column's value counts, with each value numbered in order of first appearance
/// (1, 2, …; 0 stands for missing): the provisional ids of `CriteoDataset.fitAndOpen`.
struct FirstSeenCounts: Sendable {
    private var numbers = UInt32HashMap<Int32>()
    /// Values by provisional id − 1.
    private(set) var values: [UInt32] = []
    /// Occurrences by provisional id − 1.
    private(set) var counts: [Int] = []

    /// The provisional id of `raw` (0 for `RawChunk.missing`), counting one occurrence.
    @inline(__always)
    mutating func number(_ raw: UInt64) -> Int32 {
        if raw == RawChunk.missing { return 0 }
        let value = UInt32(truncatingIfNeeded: raw)
        let (id, inserted) = numbers.value(for: value, orInsert: Int32(truncatingIfNeeded: values.count + 1))
        if inserted {
            precondition(values.count < Int(Int32.max), "more than 2^31 - 1 distinct values in one column")
            values.append(value)
            counts.append(1)
        } else {
            counts[Int(id) - 1] += 1
        }
        return id
    }

    /// The vocabulary these counts fit (the same as `Vocabulary(counts:freqLimit:)` on them).
    func vocabulary(freqLimit: Int) -> Vocabulary {
        Vocabulary(counts: zip(values, counts).map { (key: $0, value: $1) }, freqLimit: freqLimit)
    }

    /// Final table row by provisional id: `[0] = missing`, then each value's row in `vocabulary`.
    func finalIDs(_ vocabulary: Vocabulary) -> [Int32] {
        [Vocabulary.missingID] + values.map { vocabulary.id(for: UInt64($0)) }
    }
}

/// A `FirstSeenCounts` shared by the chunks of one pass (one column, one worker at a time).
final class FirstSeenCounter: @unchecked Sendable {
    var counts = FirstSeenCounts()

    /// Numbers every vocabulary column of `categorical` (`[n, 26]` raw ids, row-major) into
    /// `ids` (`[26, n]`, feature-major), one column per task.
    ///
    /// NOTE: each column's counts are moved into a local for the row loop; mutating the class
    /// property per value would pay a dynamic exclusivity check each time (≈ 2/3 of the loop's
    /// cost in a profile).
    static func number(_ categorical: [UInt64], into ids: inout [Int32], counters: [FirstSeenCounter?]) {
        let n = categorical.count / Criteo.sparseCount
        categorical.withUnsafeBufferPointer { raw in
            ids.withUnsafeMutableBufferPointer { out in
                let out = UncheckedSendable(out)
                Parallel.forEach(Criteo.sparseCount) { c in
                    guard let counter = counters[c] else { return }
                    let dst = out.value.baseAddress! + c * n
                    var local = FirstSeenCounts()
                    swap(&local, &counter.counts)
                    for r in 0..<n { dst[r] = local.number(raw[r * Criteo.sparseCount + c]) }
                    swap(&local, &counter.counts)
                }
            }
        }
    }
}
