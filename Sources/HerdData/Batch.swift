import HerdTensor

/// The one batch type that flows from reader to model to server.
///
/// Layout for `B` rows, `Fd` dense features and `Fs` sparse features (one embedding table each):
///
/// ```
/// dense   Tensor [B, Fd]  row-major Float     row b = dense[b*Fd ..< (b+1)*Fd]
/// sparse  KeyedJagged, feature-major (TorchRec's KeyedJaggedTensor layout):
///         offsets [Fs*B + 1] Int32, bag (f, b) = ids[offsets[f*B + b] ..< offsets[f*B + b + 1]]
///         ids     [nnz]      Int32 row ids, already mapped into feature f's table
///
///         feature 0            feature 1                feature Fs-1
///         ┌───────────────────┬───────────────────────┬─── … ───┐
///   ids   │ b0 b1 b2 … bB-1   │ b0  b1 b1 b2 … bB-1   │         │   (b1 of f1 is multi-hot)
///         └───────────────────┴───────────────────────┴─── … ───┘
/// labels  [B] Float, 0 or 1 (empty when unlabelled, e.g. at serving time)
/// ```
///
/// Criteo rows are one-hot: every bag holds exactly one id, so `offsets[i] == i`.
public struct Batch: @unchecked Sendable {
    /// `[B, Fd]` dense features (already transformed, e.g. log(x+1)).
    public var dense: Tensor
    /// Sparse ids, feature-major.
    public var sparse: KeyedJagged
    /// `[B]` labels (0/1) or empty.
    public var labels: [Float]

    public init(dense: Tensor, sparse: KeyedJagged, labels: [Float]) {
        precondition(sparse.features == 0 || sparse.batchSize == dense.rows, "dense has \(dense.rows) rows, sparse \(sparse.batchSize)")
        precondition(labels.isEmpty || labels.count == dense.rows, "\(labels.count) labels for \(dense.rows) rows")
        self.dense = dense
        self.sparse = sparse
        self.labels = labels
    }

    /// Rows in the batch (`B`).
    public var count: Int { dense.rows }

    /// Rows `range` of this batch as a new batch (copies), e.g. one data-parallel shard.
    public func slice(_ range: Range<Int>) -> Batch {
        let fd = dense.columns
        let d = Tensor(shape: [range.count, fd])
        d.data.update(from: dense.data + range.lowerBound * fd, count: range.count * fd)
        return Batch(
            dense: d, sparse: sparse.slice(range),
            labels: labels.isEmpty ? [] : Array(labels[range]))
    }
}

/// Variable-length id lists keyed by feature, for a batch of `B` rows (see `Batch` for the layout).
public struct KeyedJagged: Sendable, Equatable {
    /// Number of sparse features (`Fs`).
    public let features: Int
    /// Rows (`B`).
    public let batchSize: Int
    /// `[Fs*B + 1]` bag boundaries into `ids`.
    public var offsets: [Int32]
    /// `[nnz]` row ids.
    public var ids: [Int32]

    public init(features: Int, batchSize: Int, offsets: [Int32], ids: [Int32]) {
        precondition(offsets.count == features * batchSize + 1, "offsets must have Fs*B+1 entries")
        precondition(Int(offsets.last ?? 0) == ids.count, "last offset must equal the id count")
        self.features = features
        self.batchSize = batchSize
        self.offsets = offsets
        self.ids = ids
    }

    /// One-hot features: `ids` is `[Fs, B]` feature-major, one id per bag.
    public init(oneHot ids: [Int32], features: Int, batchSize: Int) {
        precondition(ids.count == features * batchSize)
        self.init(features: features, batchSize: batchSize, offsets: (0...Int32(ids.count)).map { $0 }, ids: ids)
    }

    /// An empty set of sparse features for `batchSize` rows.
    public static func empty(batchSize: Int) -> KeyedJagged {
        KeyedJagged(features: 0, batchSize: batchSize, offsets: [0], ids: [])
    }

    /// The ids of bag (`feature`, `row`).
    public func bag(feature: Int, row: Int) -> ArraySlice<Int32> {
        let i = feature * batchSize + row
        return ids[Int(offsets[i])..<Int(offsets[i + 1])]
    }

    /// Rows `range` of every feature, re-based to start at offset 0.
    ///
    /// NOTE: for each feature the rows' ids are one contiguous run of `ids`, so this is a block
    /// copy per feature (it runs for every data-parallel shard of every step).
    public func slice(_ range: Range<Int>) -> KeyedJagged {
        let b = batchSize, n = range.count
        var nnz = 0
        for f in 0..<features { nnz += Int(offsets[f * b + range.upperBound] - offsets[f * b + range.lowerBound]) }
        var newIds = [Int32](repeating: 0, count: nnz)
        var newOffsets = [Int32](repeating: 0, count: features * n + 1)
        offsets.withUnsafeBufferPointer { off in
            ids.withUnsafeBufferPointer { src in
                newIds.withUnsafeMutableBufferPointer { dst in
                    newOffsets.withUnsafeMutableBufferPointer { no in
                        var out = 0
                        for f in 0..<features {
                            let lo = Int(off[f * b + range.lowerBound]), hi = Int(off[f * b + range.upperBound])
                            if hi > lo { (dst.baseAddress! + out).update(from: src.baseAddress! + lo, count: hi - lo) }
                            let shift = Int32(out - lo)
                            for r in 0..<n { no[f * n + r + 1] = off[f * b + range.lowerBound + r + 1] + shift }
                            out += hi - lo
                        }
                    }
                }
            }
        }
        return KeyedJagged(features: features, batchSize: n, offsets: newOffsets, ids: newIds)
    }
}

extension KeyedJagged {
    /// The given features (in that order) as a new KeyedJagged; each feature's ids are one
    /// contiguous block, so this is a block copy per feature.
    public func select(features chosen: [Int]) -> KeyedJagged {
        if chosen == Array(0..<features) { return self }
        let b = batchSize
        var newIds: [Int32] = []
        var newOffsets: [Int32] = [0]
        newOffsets.reserveCapacity(chosen.count * b + 1)
        for f in chosen {
            precondition(f >= 0 && f < features, "feature \(f) outside 0..<\(features)")
            let lo = Int(offsets[f * b]), hi = Int(offsets[f * b + b])
            let shift = Int32(newIds.count - lo)
            newIds.append(contentsOf: ids[lo..<hi])
            for r in 0..<b { newOffsets.append(offsets[f * b + r + 1] + shift) }
        }
        return KeyedJagged(features: chosen.count, batchSize: b, offsets: newOffsets, ids: newIds)
    }
}
