import HerdTensor

/// An embedding table: `N` rows of dimension `D`, looked up by row id and pooled per bag.
///
/// One protocol, several storages chosen by a spec string (see `makeEmbeddingTable`). Sparse
/// optimizers update rows in place through `row(_:)`, touching only the ids of a step's gradient.
public protocol EmbeddingTable: AnyObject, Sendable {
    /// Stable name used in checkpoints and exports, e.g. `sparse.C7`.
    var name: String { get }
    /// Rows `N`.
    var rows: Int { get }
    /// Dimension `D`.
    var dimension: Int { get }
    /// The whole table `[N, D]`, for export and checkpoints.
    var weight: Tensor { get }
    /// Pools the bags of `ids`/`offsets` (see `Kernels.embeddingBagForward`) into `out` at `outStride`.
    func pool(ids: UnsafePointer<Int32>, offsets: UnsafePointer<Int32>, bags: Int, pooling: Pooling,
              out: UnsafeMutablePointer<Float>, outStride: Int)
    /// Pointer to row `id` (`D` floats).
    func row(_ id: Int) -> UnsafeMutablePointer<Float>
}

/// A table stored as one contiguous `[N, D]` FP32 matrix (the reference storage).
public final class DenseEmbeddingTable: EmbeddingTable, @unchecked Sendable {
    public let name: String
    public let weight: Tensor
    public var rows: Int { weight.rows }
    public let dimension: Int

    /// Rows drawn from `U(−√(1/N), √(1/N))`, DLRM's initialisation.
    public init(name: String, rows: Int, dimension: Int, rng: inout SplitMix64) {
        self.name = name
        self.dimension = dimension
        weight = Tensor(shape: [rows, dimension])
        let s = (1 / Float(max(rows, 1))).squareRoot()
        for i in 0..<weight.count { weight[i] = (rng.nextUniform() * 2 - 1) * s }
    }

    /// A table over existing values `[N, D]` (loading an export or a checkpoint).
    public init(name: String, weight: Tensor) {
        precondition(weight.shape.count == 2, "an embedding table is [N, D], got \(weight.shape)")
        self.name = name
        self.weight = weight
        self.dimension = weight.shape[1]
    }

    public func pool(ids: UnsafePointer<Int32>, offsets: UnsafePointer<Int32>, bags: Int, pooling: Pooling,
                     out: UnsafeMutablePointer<Float>, outStride: Int) {
        Kernels.embeddingBagForward(table: weight.data, rows: rows, dimension: dimension, ids: ids, offsets: offsets,
                                    bags: bags, pooling: pooling, out: out, outStride: outStride)
    }

    @inlinable public func row(_ id: Int) -> UnsafeMutablePointer<Float> { weight.data + id * dimension }
}

/// Errors in layer specifications (bad spec strings, inconsistent sizes).
public struct LayerSpecError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Builds an embedding table from a spec string, faiss `index_factory` style.
///
/// Specs: `dense` — a contiguous FP32 `[N, D]` matrix.
public func makeEmbeddingTable(spec: String, name: String, rows: Int, dimension: Int, rng: inout SplitMix64) throws -> any EmbeddingTable {
    switch spec.lowercased() {
    case "dense": return DenseEmbeddingTable(name: name, rows: rows, dimension: dimension, rng: &rng)
    default: throw LayerSpecError("unknown embedding table spec '\(spec)'; known: dense")
    }
}
