import Foundation
import HerdTraining

/// The user embeddings the recall stage queries with: id → row of `vectors [N, E]`.
///
/// Loaded from `W/embeddings/user.safetensors` (`ids` I64 [N], `embeddings` F32 [N, E]), which
/// `herd predict` writes from a two-tower export. Immutable, so any thread may read it.
public struct UserEmbeddings: Sendable {
    public let dimension: Int
    /// `[N, E]` row-major.
    public let vectors: [Float]
    /// The user table's key column the ids come from (`key_column` metadata), if named.
    public let keyColumn: String?
    private let rows: [Int64: Int]

    public var count: Int { rows.count }

    /// `ids[N]` and `vectors[N, dimension]`; a repeated id keeps its last row.
    public init(ids: [Int64], vectors: [Float], dimension: Int, keyColumn: String? = nil) throws {
        guard dimension > 0, vectors.count == ids.count * dimension else {
            throw ServingError("user embeddings: \(ids.count) ids need \(ids.count * max(dimension, 0)) floats (dimension \(dimension)), got \(vectors.count)")
        }
        var rows: [Int64: Int] = [:]
        rows.reserveCapacity(ids.count)
        for (r, id) in ids.enumerated() { rows[id] = r }
        self.rows = rows
        self.vectors = vectors
        self.dimension = dimension
        self.keyColumn = keyColumn
    }

    /// Reads a safetensors embeddings file (the format in `Workspace`).
    public init(url: URL) throws {
        let file = try SafeTensorsFile(url: url)
        guard let idsEntry = file.entry("ids"), idsEntry.dtype == .i64, idsEntry.shape.count == 1 else {
            throw ServingError("\(url.path): needs an `ids` I64 [N] tensor (the user key column values); write it with `herd predict --embeddings` on a two-tower export")
        }
        guard let e = file.entry("embeddings"), e.dtype == .f32, e.shape.count == 2, e.shape[0] == idsEntry.shape[0], e.shape[1] > 0 else {
            throw ServingError("\(url.path): needs an `embeddings` F32 [N, E] tensor with N = \(idsEntry.shape[0]) rows like `ids`")
        }
        try self.init(ids: try file.int64s("ids"), vectors: try file.tensor("embeddings").array, dimension: e.shape[1],
                      keyColumn: file.metadata["key_column"])
    }

    /// The embedding of `id`, or nil for an unknown user.
    public func vector(of id: Int64) -> ArraySlice<Float>? {
        guard let r = rows[id] else { return nil }
        return vectors[(r * dimension)..<((r + 1) * dimension)]
    }
}
