import HerdData
import HerdTensor

/// One embedding table per sparse feature, pooled per bag (TorchRec's EmbeddingBagCollection; the
/// "sparse arch" of DLRM and the deep part of Wide & Deep). Tables may differ in dimension.
///
/// Forward writes feature `f` of row `b` to `out + b * outStride + outOffset + columnOffsets[f]`
/// (`D_f` floats; `columnOffsets` is the running sum of the dimensions), so pooled embeddings land
/// directly in the caller's interaction or MLP input buffer. Backward reads gradients with the
/// same layout and leaves one merged `SparseRowGradient` per table in `gradients`.
public final class EmbeddingBagCollection: @unchecked Sendable {
    public let tables: [any EmbeddingTable]
    public let pooling: Pooling
    /// Column of each table's output within a row (running sum of dimensions).
    public let columnOffsets: [Int]
    /// Row gradients of the last backward, one per table (empty before the first backward).
    public private(set) var gradients: [SparseRowGradient] = []
    private var lastSparse: KeyedJagged?

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
        gradients = sparse.ids.withUnsafeBufferPointer { ids in
            sparse.offsets.withUnsafeBufferPointer { offsets in
                tables.enumerated().map { f, t in
                    Kernels.embeddingBagBackward(gradOut: grad + gradOffset + columnOffsets[f], gradStride: gradStride, dimension: t.dimension,
                                                 ids: ids.baseAddress!, offsets: offsets.baseAddress! + f * b, bags: b, pooling: pooling)
                }
            }
        }
    }

    /// Replaces the gradients (after merging data-parallel shards).
    public func setGradients(_ g: [SparseRowGradient]) { gradients = g }
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
