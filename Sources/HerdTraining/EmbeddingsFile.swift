import Foundation
import HerdTensor

/// One side's embeddings as `herd predict` writes them to `W/embeddings/{user,item}.safetensors`
/// (see `Workspace`):
///
/// ```
/// ids          I64 [N]      key column values (the encoded user_id / item_id), unique
/// embeddings   F32 [N, E]   one row per id (unit rows from a two-tower export)
/// __metadata__              key_column = the key column's name, plus model name/version
/// ```
public struct EmbeddingsFile: Sendable {
    /// Metadata key naming the key column.
    public static let keyColumnKey = "key_column"

    public let ids: [Int64]
    /// [N, E]
    public let embeddings: Tensor
    public let metadata: [String: String]

    public init(ids: [Int64], embeddings: Tensor, metadata: [String: String] = [:]) {
        self.ids = ids
        self.embeddings = embeddings
        self.metadata = metadata
    }

    /// The key column named in the metadata, if any.
    public var keyColumn: String? { metadata[Self.keyColumnKey] }

    /// Reads and checks a file: both tensors present with matching N, ids unique.
    public static func read(url: URL) throws -> EmbeddingsFile {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TrainingError("\(url.path) is missing: run `herd predict` on a two-tower export first")
        }
        let file = try SafeTensorsFile(url: url)
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path: url.path, reason + " (expected `ids` I64 [N] and `embeddings` F32 [N, E])") }
        guard let idsEntry = file.entry("ids"), idsEntry.dtype == .i64, idsEntry.shape.count == 1 else { throw fail("no I64 [N] tensor `ids`") }
        guard let embEntry = file.entry("embeddings"), embEntry.dtype == .f32, embEntry.shape.count == 2 else {
            throw fail("no F32 [N, E] tensor `embeddings`")
        }
        guard embEntry.shape[0] == idsEntry.shape[0] else {
            throw fail("`ids` has \(idsEntry.shape[0]) rows but `embeddings` has \(embEntry.shape[0])")
        }
        let ids = try file.int64s("ids")
        var seen = Set<Int64>()
        if let dup = ids.first(where: { !seen.insert($0).inserted }) { throw fail("id \(dup) appears twice in `ids`") }
        return EmbeddingsFile(ids: ids, embeddings: try file.tensor("embeddings"), metadata: file.metadata)
    }

    /// Writes the file atomically.
    public func write(to url: URL) throws {
        try SafeTensors.write([SafeTensorsItem("ids", int64: ids), SafeTensorsItem("embeddings", embeddings)], metadata: metadata, to: url)
    }

    /// Row of each id.
    public var rowOfID: [Int64: Int] { Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) }) }
}
