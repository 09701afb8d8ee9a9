import HerdTensor

extension Batch {
    /// The rows of `batches` one after another, as one batch (copies): dense `[ΣB, Fd]`, sparse
    /// feature-major over all rows, labels joined (empty unless every part has labels).
    ///
    /// Every part must have the same dense width and sparse feature count (`canConcatenate`).
    /// Used to rank the candidates of concurrent requests in one forward (`RankingBatcher`).
    public static func concatenated(_ batches: [Batch]) -> Batch {
        precondition(canConcatenate(batches), "batches to concatenate need the same dense width and sparse feature count")
        if batches.count == 1 { return batches[0] }
        // NOTE: an empty part's dense tensor reports 0 columns (`Tensor.columns`); it adds nothing.
        let fd = batches.first { $0.count > 0 }?.dense.columns ?? batches[0].dense.columns
        let n = batches.reduce(0) { $0 + $1.count }
        let dense = Tensor(shape: [n, fd])
        var row = 0
        for b in batches {
            if b.count > 0 { (dense.data + row * fd).update(from: b.dense.data, count: b.count * fd) }
            row += b.count
        }
        let labelled = batches.allSatisfy { $0.labels.count == $0.count }
        return Batch(dense: dense, sparse: KeyedJagged.concatenated(batches.map(\.sparse)), labels: labelled ? batches.flatMap(\.labels) : [])
    }

    /// Whether `concatenated` accepts `batches`: at least one, all with the same sparse feature
    /// count and (parts with rows) the same dense width.
    public static func canConcatenate(_ batches: [Batch]) -> Bool {
        guard let first = batches.first else { return false }
        let width = batches.first { $0.count > 0 }?.dense.columns
        return batches.allSatisfy { $0.sparse.features == first.sparse.features && ($0.count == 0 || $0.dense.columns == width) }
    }
}

extension KeyedJagged {
    /// The rows of `parts` one after another (feature-major over all rows). All parts must have
    /// the same feature count.
    ///
    /// NOTE: each part's ids of one feature are one contiguous run, so this is a block copy per
    /// (feature, part) plus the shifted offsets.
    public static func concatenated(_ parts: [KeyedJagged]) -> KeyedJagged {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let features = parts[0].features
        precondition(parts.allSatisfy { $0.features == features }, "parts to concatenate need the same feature count")
        if parts.count == 1 { return parts[0] }
        let n = parts.reduce(0) { $0 + $1.batchSize }
        let nnz = parts.reduce(0) { $0 + $1.ids.count }
        var ids: [Int32] = []
        ids.reserveCapacity(nnz)
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(features * n + 1)
        for f in 0..<features {
            for p in parts {
                let b = p.batchSize
                let lo = Int(p.offsets[f * b]), hi = Int(p.offsets[f * b + b])
                let shift = Int32(ids.count - lo)
                ids.append(contentsOf: p.ids[lo..<hi])
                for r in 0..<b { offsets.append(p.offsets[f * b + r + 1] + shift) }
            }
        }
        return KeyedJagged(features: features, batchSize: n, offsets: offsets, ids: ids)
    }
}
