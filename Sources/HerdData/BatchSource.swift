import HerdTensor

/// Anything that serves Criteo-style rows as `Batch`es: the memory-mapped cache
/// (`CriteoDataset`) or rows held in memory (`MemoryBatchSource`).
///
/// An epoch of batch size `B` has `batchCount(size: B)` batches; batch `k` holds the rows at
/// positions `k*B ..< min((k+1)*B, rows)` of `rowOrder(seed:epoch:)`, so the last batch may be
/// smaller. Everything is a pure function of `(seed, epoch, k)`.
public protocol BatchSource: Sendable {
    /// Rows available.
    var rows: Int { get }
    /// The rows at `indices`, in that order, as one batch.
    func batch(rows indices: [Int]) -> Batch
    /// Rows `range` in file order as one batch (sources may copy contiguous runs faster).
    func batch(range: Range<Int>) -> Batch
}

extension BatchSource {
    public func batch(range: Range<Int>) -> Batch { batch(rows: Array(range)) }

    /// Batches per epoch of `size` rows (the last one may be partial).
    public func batchCount(size: Int) -> Int {
        precondition(size > 0, "batch size must be positive")
        return (rows + size - 1) / size
    }

    /// The visiting order of an epoch: file order when `seed` is nil, else a permutation fixed by
    /// `(seed, epoch)` — of rows, or of blocks of `blockRows` rows (see `RowOrder`).
    public func rowOrder(seed: UInt64?, epoch: Int, blockRows: Int? = nil) -> RowOrder {
        RowOrder(rows: rows, seed: seed, epoch: epoch, blockRows: blockRows)
    }

    /// Batch `index` of epoch `epoch` (`seed == nil`: file order), computed directly.
    public func batch(at index: Int, size: Int, seed: UInt64?, epoch: Int, blockRows: Int? = nil) -> Batch {
        batch(at: index, size: size, order: rowOrder(seed: seed, epoch: epoch, blockRows: blockRows))
    }

    /// Batch `index` under a given row order.
    public func batch(at index: Int, size: Int, order: RowOrder) -> Batch {
        precondition(index >= 0 && index < batchCount(size: size), "batch \(index) outside 0..<\(batchCount(size: size))")
        let positions = (index * size)..<min((index + 1) * size, rows)
        if order.isSequential { return batch(range: positions) }
        return batch(rows: positions.map { order[$0] })
    }

    /// The batches of one epoch in order, starting at batch `start` (to resume mid-epoch).
    public func batches(
        size: Int, shuffle seed: UInt64? = nil, epoch: Int = 0, blockRows: Int? = nil, startingAt start: Int = 0
    ) -> BatchSequence<Self> {
        BatchSequence(source: self, size: size, order: rowOrder(seed: seed, epoch: epoch, blockRows: blockRows), start: start)
    }
}

/// The batches of one epoch of a `BatchSource` (see `BatchSource.batches`).
public struct BatchSequence<Source: BatchSource>: Sequence, Sendable {
    public let source: Source
    public let size: Int
    public let order: RowOrder
    public let start: Int

    public var count: Int { Swift.max(0, source.batchCount(size: size) - start) }

    public struct Iterator: IteratorProtocol {
        let sequence: BatchSequence
        var position: Int
        public mutating func next() -> Batch? {
            guard position < sequence.source.batchCount(size: sequence.size) else { return nil }
            defer { position += 1 }
            return sequence.source.batch(at: position, size: sequence.size, order: sequence.order)
        }
    }

    public func makeIterator() -> Iterator { Iterator(sequence: self, position: start) }
    public var underestimatedCount: Int { count }
}

/// Transformed rows held in memory, served as batches (tests, small files, `herd predict`).
public final class MemoryBatchSource: BatchSource, @unchecked Sendable {
    public let data: TransformedRows
    public var rows: Int { data.count }

    public init(_ data: TransformedRows) { self.data = data }

    /// Parses nothing: transforms `raw` with `state` and keeps the result.
    public convenience init(raw: RawChunk, state: FeatureState) {
        self.init(state.transformRows(raw))
    }

    public func batch(rows indices: [Int]) -> Batch {
        let m = indices.count, n = data.count
        let fd = Criteo.denseCount
        let dense = Tensor(shape: [m, fd])
        var ids = [Int32](repeating: 0, count: m * Criteo.sparseCount)
        var labels = [Float](repeating: 0, count: data.labelled ? m : 0)
        data.dense.withUnsafeBufferPointer { src in
            for (b, r) in indices.enumerated() {
                precondition(r >= 0 && r < n, "row \(r) outside 0..<\(n)")
                (dense.data + b * fd).update(from: src.baseAddress! + r * fd, count: fd)
            }
        }
        for f in 0..<Criteo.sparseCount {
            for (b, r) in indices.enumerated() { ids[f * m + b] = data.ids[f * n + r] }
        }
        if data.labelled { for (b, r) in indices.enumerated() { labels[b] = data.labels[r] } }
        return Batch(dense: dense, sparse: KeyedJagged(oneHot: ids, features: Criteo.sparseCount, batchSize: m), labels: labels)
    }
}
