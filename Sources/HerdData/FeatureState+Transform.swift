import Foundation
import HerdTensor

/// Transformed rows ready for a `Batch` or the cache, `n` rows:
///
/// ```
/// labels  [n]       Float 0/1 (empty when unlabelled)
/// dense   [n, 13]   Float log(max(x,0)+1), missing → 0, row-major
/// ids     [26, n]   Int32 table rows, feature-major (one-hot: bag (f, b) = ids[f*n + b])
/// ```
public struct TransformedRows: Sendable, Equatable {
    public var labels: [Float]
    public var dense: [Float]
    public var ids: [Int32]
    public var labelled: Bool
    public var count: Int { dense.count / Criteo.denseCount }

    /// The rows as one batch.
    public func batch() -> Batch {
        let n = count
        return Batch(
            dense: Tensor(shape: [n, Criteo.denseCount], values: dense),
            sparse: KeyedJagged(oneHot: ids, features: Criteo.sparseCount, batchSize: n),
            labels: labels)
    }
}

extension FeatureState {
    /// The dense transform of one raw value: `log(max(x, 0) + 1)`, missing (`nan`) → 0.
    @inline(__always)
    public static func transformDense(_ x: Float) -> Float {
        x.isNaN ? 0 : log1p(max(x, 0))
    }

    /// Transforms parsed rows (see `TransformedRows` for the layout).
    public func transformRows(_ raw: RawChunk) -> TransformedRows {
        let n = raw.count
        let dense = raw.dense.map(Self.transformDense)
        var ids = [Int32](repeating: 0, count: n * Criteo.sparseCount)
        ids.withUnsafeMutableBufferPointer { out in
            raw.categorical.withUnsafeBufferPointer { cats in
                for c in 0..<Criteo.sparseCount {
                    let dst = out.baseAddress! + c * n
                    // NOTE: the encoding switch is hoisted out of the row loop.
                    switch columns[c] {
                    case .hashing(let size):
                        Self.hashColumn(cats, column: c, rows: n, size: size, into: dst)
                    case .vocabulary(let vocabulary):
                        for r in 0..<n { dst[r] = vocabulary.id(for: cats[r * Criteo.sparseCount + c]) }
                    }
                }
            }
        }
        return TransformedRows(labels: raw.labels, dense: dense, ids: ids, labelled: raw.labelled)
    }

    /// Column `c` of raw ids `cats` (`[n, 26]`, row-major) hashed into `size` rows: `dst[r]` =
    /// raw mod `size`, missing → 0.
    @inline(__always)
    static func hashColumn(_ cats: UnsafeBufferPointer<UInt64>, column c: Int, rows n: Int, size: Int, into dst: UnsafeMutablePointer<Int32>) {
        let m = UInt64(size)
        for r in 0..<n {
            let v = cats[r * Criteo.sparseCount + c]
            dst[r] = v == RawChunk.missing ? 0 : Int32(truncatingIfNeeded: v % m)
        }
    }

    /// Transforms parsed rows into one batch: dense `[n, 13]`, 26 one-hot sparse features, labels.
    public func transform(_ raw: RawChunk) -> Batch {
        transformRows(raw).batch()
    }
}
