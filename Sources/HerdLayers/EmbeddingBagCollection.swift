import HerdData
import HerdTensor

/// One embedding table per sparse feature, pooled per bag (TorchRec's EmbeddingBagCollection; the
/// "sparse arch" of DLRM and the deep part of Wide & Deep).
///
/// Forward writes feature `f` of row `b` to `out + b * outStride + outOffset + f * D`, so pooled
/// embeddings land directly in the caller's interaction buffer. Backward reads gradients with the
/// same layout and leaves one merged `SparseRowGradient` per table in `gradients`.
public final class EmbeddingBagCollection: @unchecked Sendable {
    public let tables: [any EmbeddingTable]
    public let pooling: Pooling
    /// Row gradients of the last backward, one per table (empty before the first backward).
    public private(set) var gradients: [SparseRowGradient] = []
    private var lastSparse: KeyedJagged?

    public init(tables: [any EmbeddingTable], pooling: Pooling = .sum) {
        precondition(!tables.isEmpty)
        precondition(Set(tables.map(\.dimension)).count == 1, "all tables of a collection share one dimension")
        self.tables = tables
        self.pooling = pooling
    }

    /// A replica over the same tables (tables are shared; gradients are per replica).
    public init(sharing other: EmbeddingBagCollection) {
        tables = other.tables
        pooling = other.pooling
    }

    public var dimension: Int { tables[0].dimension }
    public var features: Int { tables.count }

    /// Pools every feature of `sparse` (`Fs` must equal the table count).
    public func forward(_ sparse: KeyedJagged, out: UnsafeMutablePointer<Float>, outStride: Int, outOffset: Int) {
        precondition(sparse.features == tables.count, "batch has \(sparse.features) sparse features, model \(tables.count)")
        lastSparse = sparse
        let b = sparse.batchSize, d = dimension
        sparse.ids.withUnsafeBufferPointer { ids in
            sparse.offsets.withUnsafeBufferPointer { offsets in
                for (f, t) in tables.enumerated() {
                    t.pool(ids: ids.baseAddress!, offsets: offsets.baseAddress! + f * b, bags: b, pooling: pooling,
                           out: out + outOffset + f * d, outStride: outStride)
                }
            }
        }
    }

    /// Scatters `grad` (same layout as forward's output) into per-table sparse row gradients.
    public func backward(grad: UnsafePointer<Float>, gradStride: Int, gradOffset: Int) {
        guard let sparse = lastSparse else { preconditionFailure("EmbeddingBagCollection.backward before forward") }
        let b = sparse.batchSize, d = dimension
        gradients = sparse.ids.withUnsafeBufferPointer { ids in
            sparse.offsets.withUnsafeBufferPointer { offsets in
                (0..<tables.count).map { f in
                    Kernels.embeddingBagBackward(gradOut: grad + gradOffset + f * d, gradStride: gradStride, dimension: d,
                                                 ids: ids.baseAddress!, offsets: offsets.baseAddress! + f * b, bags: b, pooling: pooling)
                }
            }
        }
    }

    /// Replaces the gradients (after merging data-parallel shards).
    public func setGradients(_ g: [SparseRowGradient]) { gradients = g }
}
