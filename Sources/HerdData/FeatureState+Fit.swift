import HerdTensor

extension FeatureState {
    /// Fits the state on a training file: one streaming pass that counts every categorical value
    /// (skipped entirely when every column is hashed). Malformed rows follow `onError`;
    /// `fittedRows` / `fittedSkippedRows` record what was seen.
    public static func fit(
        trainPath: String, config: FeatureConfig, format: CriteoFormat = .auto, onError: OnError = .fail,
        chunkBytes: Int = CriteoReader.defaultChunkBytes
    ) throws -> FeatureState {
        try config.validate()
        var counter = CategoryCounter(config: config)
        var summary: ReadSummary?
        if config.needsFit {
            let reader = CriteoReader(path: trainPath, format: format, onError: onError, chunkBytes: chunkBytes)
            summary = try reader.forEachChunk { counter.add($0) }
        } else {
            _ = try SourceFingerprint(path: trainPath)
        }
        var state = counter.state(config: config)
        state.fittedRows = summary?.rows ?? 0
        state.fittedSkippedRows = summary?.skippedRows ?? 0
        return state
    }

    /// Fits the state on rows already in memory.
    public static func fit(rows: RawChunk, config: FeatureConfig) throws -> FeatureState {
        try config.validate()
        var counter = CategoryCounter(config: config)
        counter.add(rows)
        var state = counter.state(config: config)
        state.fittedRows = rows.count
        return state
    }
}

/// Per-column occurrence counts of raw categorical ids.
///
/// NOTE: counting is parallel by column (each worker owns whole columns), so no per-thread
/// dictionaries need merging and results do not depend on the thread count.
struct CategoryCounter {
    private final class Counts { var byValue = UInt32HashMap<Int>() }
    private let counts: [Counts?]

    init(config: FeatureConfig) {
        counts = config.columns.map { if case .vocabulary = $0 { return Counts() } else { return nil } }
    }

    mutating func add(_ rows: RawChunk) {
        let n = rows.count
        let counts = self.counts
        rows.categorical.withUnsafeBufferPointer { raw in
            Parallel.forEach(Criteo.sparseCount) { c in
                guard let box = counts[c] else { return }
                for r in 0..<n {
                    let v = raw[r * Criteo.sparseCount + c]
                    if v != RawChunk.missing { box.byValue.update(UInt32(truncatingIfNeeded: v)) { ($0 ?? 0) + 1 } }
                }
            }
        }
    }

    func state(config: FeatureConfig) -> FeatureState {
        let columns: [FeatureState.ColumnEncoding] = config.columns.enumerated().map { c, column in
            switch column {
            case .hashing(let n): return .hashing(tableSize: n)
            case .vocabulary(let freqLimit): return .vocabulary(Vocabulary(counts: counts[c]!.byValue.entries, freqLimit: freqLimit))
            }
        }
        return FeatureState(columns: columns)
    }
}
