import Foundation
import HerdFeatures
import HerdTraining

/// What `herd nearline` does.
public struct NearlineConfig: Sendable {
    public var workspace: Workspace
    /// Feature store spec; `nil` = the embedded store in `W/serving/features.store`.
    public var store: String?
    /// ANN index spec for a new index (`HNSW32`, `Flat`, `IVF1024,Flat`); `nil` = keep the existing
    /// index's kind, or `HNSW32` for a first run.
    public var index: String?
    /// Key columns of user.herdtable / item.herdtable when the embeddings' metadata does not name them.
    public var userKey: String?
    public var itemKey: String?
    public var metric: ANNMetric = .innerProduct

    public init(workspace: Workspace) { self.workspace = workspace }
}

/// The result of a nearline run (also written to `W/serving/nearline.json`).
public struct NearlineSummary: Codable, Sendable, Equatable {
    public var users: Int
    public var items: Int
    public var vectors: Int
    public var indexCount: Int
    public var indexSpec: String
    public var indexPath: String
    public var indexReused: Bool
    public var store: String
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case users, items, vectors, seconds, store
        case indexCount = "index_count", indexSpec = "index_spec", indexPath = "index_path", indexReused = "index_reused"
    }
}

/// The nearline job: workspace tables → feature store, item embeddings → ANN index.
///
/// Re-running updates in place: rows are upserted into the store, and the saved index is loaded
/// and its vectors replaced or extended (ids already present get their new vector) unless
/// `--index` asks for a different kind or the dimension changed.
public enum Nearline {
    public static let defaultIndex = "HNSW32,efSearch=64,efConstruction=200"

    public static func run(_ config: NearlineConfig, progress: (String) -> Void) throws -> NearlineSummary {
        let t0 = Date()
        let w = config.workspace
        let userTable = w.table("user"), itemTable = w.table("item"), itemEmbeddings = w.embeddingTable("item")
        for (url, command) in [(userTable, "herd preprocess … --workspace"), (itemTable, "herd preprocess … --workspace"),
                               (itemEmbeddings, "herd predict --embeddings (two-tower export)")] {
            try w.require(url, writtenBy: command)
        }
        try FileManager.default.createDirectory(at: w.serving, withIntermediateDirectories: true)

        // Features.
        let store = try makeFeatureStore(spec: config.store ?? "embedded:\(w.featureStoreFile.path)")
        var counts: [EntityKind: Int] = [:]
        for kind in EntityKind.allCases {
            let url = w.table(kind.rawValue)
            let table = try TableFile.read(path: url.path)
            let key = try keyColumn(kind, table: table, config: config, url: url)
            progress("nearline: \(kind) features: \(table.rowCount) rows from \(url.lastPathComponent) (key \(key)) → \(store.spec)")
            var last = Date.distantPast
            try withoutActuallyEscaping(progress) { progress in
                try store.put(table, kind: kind, keyColumn: key) { done, total in
                    if Date().timeIntervalSince(last) > 1 || done == total {
                        last = Date()
                        progress("nearline: \(kind) features \(done)/\(total)")
                    }
                }
            }
            counts[kind] = table.rowCount + (try putUnseen(kind, like: table, keyColumn: key, workspace: w, into: store, progress: progress))
        }

        // Item embeddings → index.
        let file = try SafeTensorsFile(url: itemEmbeddings)
        guard let idsEntry = file.entry("ids"), idsEntry.dtype == .i64, idsEntry.shape.count == 1 else {
            throw ServingError("\(itemEmbeddings.path): needs an `ids` I64 [N] tensor (the item key column values)")
        }
        guard let embEntry = file.entry("embeddings"), embEntry.dtype == .f32, embEntry.shape.count == 2,
              embEntry.shape[0] == idsEntry.shape[0], embEntry.shape[1] > 0 else {
            throw ServingError("\(itemEmbeddings.path): needs an `embeddings` F32 [N, E] tensor with N = \(idsEntry.shape[0]) rows like `ids`")
        }
        let n = embEntry.shape[0], e = embEntry.shape[1]
        let ids = try file.int64s("ids")
        let raw = try file.bytes(of: "embeddings")
        // NOTE: copied out of the mapping: safetensors does not promise 4-byte-aligned data.
        let vectors = [Float](unsafeUninitializedCapacity: n * e) { buf, count in
            UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(n * e * 4)]))
            count = n * e
        }

        var index: (any ANNIndex)?
        var reused = false
        if FileManager.default.fileExists(atPath: w.itemIndex.path) {
            let old = try loadIndex(from: w.itemIndex)
            let sameKind = config.index.map { kindName($0) == kindName(old.spec) } ?? true
            if old.dimension == e && old.metric == config.metric && sameKind {
                index = old
                reused = true
                progress("nearline: updating \(w.itemIndex.path) (\(old.spec), \(old.count) vectors) in place")
            } else {
                progress("nearline: rebuilding \(w.itemIndex.path): it is \(old.spec), dimension \(old.dimension), \(old.metric.rawValue); asked for \(config.index ?? old.spec), dimension \(e), \(config.metric.rawValue)")
            }
        }
        let built = try index ?? makeIndex(spec: config.index ?? defaultIndex, dimension: e, metric: config.metric)
        let chunk = 20_000
        var start = 0
        try vectors.withUnsafeBufferPointer { floats in
            // NOTE: an IVF index trains its lists on its first add, so it gets everything at once.
            let step = built is IVFIndex && !reused ? n : chunk
            while start < n {
                let end = min(n, start + step)
                try ids[start..<end].withUnsafeBufferPointer { i in
                    try built.add(ids: i, vectors: UnsafeBufferPointer(rebasing: floats[(start * e)..<(end * e)]))
                }
                start = end
                progress("nearline: item index \(end)/\(n) vectors (\(built.spec))")
            }
        }
        try built.save(to: w.itemIndex)
        let summary = NearlineSummary(
            users: counts[.user] ?? 0, items: counts[.item] ?? 0, vectors: n, indexCount: built.count, indexSpec: built.spec,
            indexPath: w.itemIndex.path, indexReused: reused, store: store.spec, seconds: Date().timeIntervalSince(t0))
        let e2 = JSONEncoder()
        e2.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try e2.encode(summary), to: w.nearlineSummary)
        return summary
    }

    /// `Flat`, `IVF…`, `HNSW…`: specs of one kind can update each other's files.
    /// Puts `W/features/<kind>_unseen.herdtable` (entities out of the training vocabulary, written by
    /// `herd preprocess recsys2021`) into `store` under their row keys (`<key>_key`), with the same
    /// columns as the known table (their key column is 0, out of vocabulary). Returns the row count
    /// (0 when there is no such table).
    ///
    /// NOTE: `herd predict` embeds these entities and keys their vectors by the row key, so the ANN
    /// index can return them as candidates; without rows in the store, their key would reach the
    /// ranker as an id beyond the feature's cardinality.
    static func putUnseen(_ kind: EntityKind, like table: FeatureTable, keyColumn: String, workspace: Workspace,
                          into store: any FeatureStore, progress: (String) -> Void) throws -> Int {
        let url = workspace.table("\(kind.rawValue)_unseen"), rowKey = keyColumn + "_key"
        guard FileManager.default.fileExists(atPath: url.path) else { return 0 }
        let unseen = try TableFile.read(path: url.path)
        guard unseen.rowCount > 0 else { return 0 }
        guard unseen.contains(rowKey), table.names.allSatisfy(unseen.contains) else {
            throw ServingError("\(url.path): needs the row key \(rowKey) and every column of \(kind.rawValue).herdtable "
                               + "(\(table.names.joined(separator: ", "))); re-run `herd preprocess recsys2021`")
        }
        let keys = unseen[rowKey]
        guard keys.nullCount == 0, let ids = keys.int64Values else {
            throw ServingError("\(url.path): the row key \(rowKey) has \(keys.nullCount) null values")
        }
        progress("nearline: \(kind) features: \(unseen.rowCount) rows unseen in training from \(url.lastPathComponent) (key \(rowKey)) → \(store.spec)")
        try store.put(try unseen.select(table.names), kind: kind, keyColumn: keyColumn, ids: ids, progress: nil)
        return unseen.rowCount
    }

    static func kindName(_ spec: String) -> String {
        let head = spec.split(separator: ",").first.map(String.init)?.uppercased() ?? ""
        if head.hasPrefix("IVF") { return head }
        if head.hasPrefix("HNSW") { return head }
        return head
    }

    /// The key column: the embeddings' `key_column` metadata, else the flag, else an error listing the columns.
    static func keyColumn(_ kind: EntityKind, table: FeatureTable, config: NearlineConfig, url: URL) throws -> String {
        let flag = kind == .user ? config.userKey : config.itemKey
        if let flag {
            guard table.contains(flag) else {
                throw ServingError("\(url.path) has no column '\(flag)' (--\(kind)-key); columns: \(table.names.joined(separator: ", "))")
            }
            return flag
        }
        let embeddings = config.workspace.embeddingTable(kind.rawValue)
        if FileManager.default.fileExists(atPath: embeddings.path),
           let key = try SafeTensorsFile(url: embeddings).metadata["key_column"], table.contains(key) {
            return key
        }
        throw ServingError("cannot tell the key column of \(url.path): \(embeddings.lastPathComponent) names no `key_column` in its metadata; pass --\(kind)-key (columns: \(table.names.joined(separator: ", ")))")
    }
}
