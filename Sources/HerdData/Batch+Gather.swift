import HerdTensor

extension Batch {
    /// The rows `rows` (in that order, repeats allowed) as a new batch (copies).
    public func gather(rows: [Int]) -> Batch {
        let fd = dense.columns
        let d = Tensor(shape: [rows.count, fd])
        for (k, r) in rows.enumerated() {
            precondition(r >= 0 && r < count, "row \(r) outside 0..<\(count)")
            (d.data + k * fd).update(from: dense.data + r * fd, count: fd)
        }
        return Batch(dense: d, sparse: sparse.gather(rows: rows), labels: labels.isEmpty ? [] : rows.map { labels[$0] })
    }
}

extension KeyedJagged {
    /// Bags of the rows `rows` (in that order, repeats allowed) of every feature.
    public func gather(rows: [Int]) -> KeyedJagged {
        let b = batchSize, n = rows.count
        var newOffsets = [Int32](repeating: 0, count: features * n + 1)
        var nnz = 0
        for f in 0..<features {
            for (k, r) in rows.enumerated() {
                precondition(r >= 0 && r < b, "row \(r) outside 0..<\(b)")
                nnz += Int(offsets[f * b + r + 1] - offsets[f * b + r])
                newOffsets[f * n + k + 1] = Int32(nnz)
            }
        }
        var newIds = [Int32](repeating: 0, count: nnz)
        offsets.withUnsafeBufferPointer { off in
            ids.withUnsafeBufferPointer { src in
                newIds.withUnsafeMutableBufferPointer { dst in
                    var out = 0
                    for f in 0..<features {
                        for r in rows {
                            let lo = Int(off[f * b + r]), hi = Int(off[f * b + r + 1])
                            for i in lo..<hi { dst[out] = src[i]; out += 1 }
                        }
                    }
                }
            }
        }
        return KeyedJagged(features: features, batchSize: n, offsets: newOffsets, ids: newIds)
    }
}
