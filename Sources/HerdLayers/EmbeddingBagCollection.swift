import HerdData
import HerdTensor

/// One embedding table per sparse feature, pooled per bag (TorchRec's EmbeddingBagCollection; the
/// "sparse arch" of DLRM and the deep part of Wide & Deep). Tables may differ in dimension.
///
/// Forward writes feature `f` of row `b` to `out + b * outStride + outOffset + columnOffsets[f]`
/// (`D_f` floats; `columnOffsets` is the running sum of the dimensions), so pooled embeddings land
/// directly in the caller's interaction or MLP input buffer. Backward reads gradients with the
/// same layout and leaves one merged `SparseRowGradient` per table in `gradients` — or, from a
/// caller-owned tensor (`backward(keeping:)`), keeps the bag gradients themselves, turned into row
/// gradients only when asked (`gradient(table:)`) or applied straight into the tables by plain SGD
/// (`applyScaled(table:alpha:)`).
public final class EmbeddingBagCollection: @unchecked Sendable {
    public let tables: [any EmbeddingTable]
    public let pooling: Pooling
    /// Column of each table's output within a row (running sum of dimensions).
    public let columnOffsets: [Int]
    /// Row gradients of the last backward (merged with other shards' by data-parallel training),
    /// one per table; empty before the first backward.
    public var gradients: [SparseRowGradient] {
        switch state {
        case .rows(let r): return r
        case .bags: return tables.indices.map { gradient(table: $0) }
        }
    }
    private var state: GradientState = .rows([])
    private var lastSparse: KeyedJagged?

    /// Bag gradients of one backward: `grad` (kept alive) holds bag `b` of feature `f` at
    /// `offset + b * stride + columnOffsets[f]`; `sparse` the bags' ids.
    struct BagGradients: @unchecked Sendable {
        let grad: Tensor
        let offset: Int
        let stride: Int
        let sparse: KeyedJagged
    }

    /// What the last backward left: row gradients, or the bag gradients of one or more shards
    /// (in shard order) not yet turned into rows.
    enum GradientState {
        case rows([SparseRowGradient])
        case bags([BagGradients])
    }

    public init(tables: [any EmbeddingTable], pooling: Pooling = .sum) {
        precondition(!tables.isEmpty)
        self.tables = tables
        self.pooling = pooling
        var offsets: [Int] = []
        var c = 0
        for t in tables { offsets.append(c); c += t.dimension }
        columnOffsets = offsets
    }

    /// A replica over the same tables (tables are shared; gradients are per replica).
    public init(sharing other: EmbeddingBagCollection) {
        tables = other.tables
        pooling = other.pooling
        columnOffsets = other.columnOffsets
    }

    /// Output columns per row: the sum of the table dimensions.
    public var width: Int { columnOffsets.last! + tables.last!.dimension }
    public var features: Int { tables.count }

    /// Pools every feature of `sparse` (`Fs` must equal the table count).
    public func forward(_ sparse: KeyedJagged, out: UnsafeMutablePointer<Float>, outStride: Int, outOffset: Int) {
        precondition(sparse.features == tables.count, "batch has \(sparse.features) sparse features, model \(tables.count)")
        lastSparse = sparse
        let b = sparse.batchSize
        sparse.ids.withUnsafeBufferPointer { ids in
            sparse.offsets.withUnsafeBufferPointer { offsets in
                for (f, t) in tables.enumerated() {
                    t.pool(ids: ids.baseAddress!, offsets: offsets.baseAddress! + f * b, bags: b, pooling: pooling,
                           out: out + outOffset + columnOffsets[f], outStride: outStride)
                }
            }
        }
    }

    /// Scatters `grad` (same layout as forward's output) into per-table sparse row gradients.
    public func backward(grad: UnsafePointer<Float>, gradStride: Int, gradOffset: Int) {
        guard let sparse = lastSparse else { preconditionFailure("EmbeddingBagCollection.backward before forward") }
        let b = sparse.batchSize
        state = .rows(sparse.ids.withUnsafeBufferPointer { ids in
            sparse.offsets.withUnsafeBufferPointer { offsets in
                tables.enumerated().map { f, t in
                    Kernels.embeddingBagBackward(gradOut: grad + gradOffset + columnOffsets[f], gradStride: gradStride, dimension: t.dimension,
                                                 ids: ids.baseAddress!, offsets: offsets.baseAddress! + f * b, bags: b, pooling: pooling)
                }
            }
        })
    }

    /// Like `backward(grad:gradStride:gradOffset:)` but keeps the bag gradients of `grad` (which
    /// the caller must leave unchanged until the optimizer step) instead of sorting them into row
    /// gradients now: an optimizer that needs rows gets them per table from `gradient(table:)`,
    /// plain SGD adds them straight into the tables (`applyScaled`).
    public func backward(keeping grad: Tensor, gradStride: Int, gradOffset: Int) {
        guard let sparse = lastSparse else { preconditionFailure("EmbeddingBagCollection.backward before forward") }
        precondition(gradOffset + (sparse.batchSize - 1) * gradStride + width <= grad.count || sparse.batchSize == 0,
                     "embedding gradient buffer too small")
        state = .bags([BagGradients(grad: grad, offset: gradOffset, stride: gradStride, sparse: sparse)])
    }

    /// Whether the last backward kept bag gradients (see `backward(keeping:)`).
    public var keepsBagGradients: Bool {
        if case .bags = state { return true }
        return false
    }

    /// The merged row gradient of table `f` (unique ids ascending). With kept bag gradients it is
    /// computed on each call (safe to call for different tables from different threads).
    public func gradient(table f: Int) -> SparseRowGradient {
        switch state {
        case .rows(let r): return r[f]
        case .bags(let parts):
            let t = tables[f]
            let rows = parts.map { p in
                p.sparse.ids.withUnsafeBufferPointer { ids in
                    p.sparse.offsets.withUnsafeBufferPointer { offsets in
                        Kernels.embeddingBagBackward(gradOut: p.grad.data + p.offset + columnOffsets[f], gradStride: p.stride, dimension: t.dimension,
                                                     ids: ids.baseAddress!, offsets: offsets.baseAddress! + f * p.sparse.batchSize,
                                                     bags: p.sparse.batchSize, pooling: pooling)
                    }
                }
            }
            return Kernels.mergeSparse(rows)
        }
    }

    /// Plain SGD on table `f` with the last backward's gradient: `row += alpha · g` for every
    /// touched row (`alpha = −lr`). Kept bag gradients go straight into the rows (no sort, no
    /// row-gradient buffers, see `Kernels.embeddingBagScatterAdd`); row gradients row by row.
    /// Different tables may be updated from different threads.
    public func applyScaled(table f: Int, alpha: Float) {
        let t = tables[f], d = t.dimension
        switch state {
        case .rows(let r):
            let g = r[f]
            for (j, id) in g.ids.enumerated() {
                if j + Kernels.prefetchDistance < g.count { Kernels.prefetchForWrite(t.row(Int(g.ids[j + Kernels.prefetchDistance])), count: d) }
                Kernels.axpy(alpha, g.rows.data + j * d, t.row(Int(id)), count: d)
            }
        case .bags(let parts):
            for p in parts {
                let b = p.sparse.batchSize
                p.sparse.ids.withUnsafeBufferPointer { ids in
                    p.sparse.offsets.withUnsafeBufferPointer { offsets in
                        let gradOut = p.grad.data + p.offset + columnOffsets[f]
                        if let dense = t as? DenseEmbeddingTable {
                            Kernels.embeddingBagScatterAdd(alpha: alpha, gradOut: gradOut, gradStride: p.stride, dimension: d, ids: ids.baseAddress!,
                                                           offsets: offsets.baseAddress! + f * b, bags: b, pooling: pooling,
                                                           table: dense.weight.data, rows: dense.rows)
                        } else {
                            let one = Kernels.embeddingBagBackward(gradOut: gradOut, gradStride: p.stride, dimension: d, ids: ids.baseAddress!,
                                                                   offsets: offsets.baseAddress! + f * b, bags: b, pooling: pooling)
                            for (j, id) in one.ids.enumerated() { Kernels.axpy(alpha, one.rows.data + j * d, t.row(Int(id)), count: d) }
                        }
                    }
                }
            }
        }
    }

    /// Replaces the gradients (after merging data-parallel shards).
    public func setGradients(_ g: [SparseRowGradient]) { state = .rows(g) }

    /// Data-parallel reduction without merging: appends the kept bag gradients of `others` (the
    /// other shards, in order) to this collection's, so `gradient(table:)` and `applyScaled` see
    /// the whole batch. Every collection must have kept its bag gradients.
    public func appendBagGradients(of others: [EmbeddingBagCollection]) {
        guard case .bags(var parts) = state else { preconditionFailure("appendBagGradients without kept bag gradients") }
        for o in others {
            guard case .bags(let p) = o.state else { preconditionFailure("appendBagGradients: a shard kept no bag gradients") }
            parts += p
        }
        state = .bags(parts)
    }
}

/// Sparse features fed to an MLP as one-hot (indicator) vectors: feature `f` with cardinality
/// `C_f` occupies `C_f` columns, and every id in a row's bag adds 1 to its column (multi-hot bags
/// give counts). No parameters. Friesian's W&D feeds small categoricals (media, tweet type,
/// language) this way.
public struct IndicatorColumns: Sendable, Equatable {
    /// Sparse-feature index and cardinality of each indicator.
    public let features: [Int]
    public let cardinalities: [Int]

    public init(features: [Int], cardinalities: [Int]) {
        precondition(features.count == cardinalities.count)
        self.features = features
        self.cardinalities = cardinalities
    }

    public var width: Int { cardinalities.reduce(0, +) }

    /// Writes the indicators of every row at `out + b * outStride + outOffset` (zeroing first).
    public func forward(_ sparse: KeyedJagged, out: UnsafeMutablePointer<Float>, outStride: Int, outOffset: Int) {
        let w = width, n = sparse.batchSize
        sparse.ids.withUnsafeBufferPointer { ids in
            sparse.offsets.withUnsafeBufferPointer { off in
                for b in 0..<n {
                    let row = out + b * outStride + outOffset
                    row.update(repeating: 0, count: w)
                    var col = 0
                    for (f, c) in zip(features, cardinalities) {
                        for j in Int(off[f * n + b])..<Int(off[f * n + b + 1]) {
                            let id = Int(ids[j])
                            precondition(id >= 0 && id < c, "indicator id \(id) outside cardinality \(c) of feature \(f)")
                            row[col + id] += 1
                        }
                        col += c
                    }
                }
            }
        }
    }
}

extension EmbeddingBagCollection {
    /// One table per entry of `tableSizes`, all of dimension `dimension`, built from `spec` (see
    /// `makeEmbeddingTable`) and named `<prefix>.<feature index>`; initialised in feature order.
    public convenience init(spec: String, prefix: String, tableSizes: [Int], dimension: Int, pooling: Pooling = .sum,
                            rng: inout SplitMix64) throws {
        var tables: [any EmbeddingTable] = []
        for (f, n) in tableSizes.enumerated() {
            tables.append(try makeEmbeddingTable(spec: spec, name: "\(prefix).\(f)", rows: n, dimension: dimension, rng: &rng))
        }
        self.init(tables: tables, pooling: pooling)
    }
}
