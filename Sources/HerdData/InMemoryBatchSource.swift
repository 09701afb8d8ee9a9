import HerdTensor

/// Any batch held in memory served as a `BatchSource` (tests, small files, arbitrary feature
/// counts; `MemoryBatchSource` is the Criteo-shaped equivalent over transformed rows).
public struct InMemoryBatchSource: BatchSource, @unchecked Sendable {
    public let all: Batch
    public init(_ all: Batch) { self.all = all }
    public var rows: Int { all.count }

    public func batch(range: Range<Int>) -> Batch { all.slice(range) }

    public func batch(rows indices: [Int]) -> Batch {
        let fd = all.dense.columns, b = indices.count
        let dense = Tensor(shape: [b, fd])
        for (i, r) in indices.enumerated() { (dense.data + i * fd).update(from: all.dense.data + r * fd, count: fd) }
        var offsets: [Int32] = [0], ids: [Int32] = []
        for f in 0..<all.sparse.features {
            for r in indices {
                ids.append(contentsOf: all.sparse.bag(feature: f, row: r))
                offsets.append(Int32(ids.count))
            }
        }
        return Batch(dense: dense, sparse: KeyedJagged(features: all.sparse.features, batchSize: b, offsets: offsets, ids: ids),
                     labels: all.labels.isEmpty ? [] : indices.map { all.labels[$0] })
    }
}
