import Foundation
import HerdFeatures
import HerdTensor
import HerdTraining

extension Recommender {
    /// Builds a recommender from what the workflow wrote to `workspace`:
    ///
    /// - `embeddings/user.safetensors` (herd predict on the two-tower export): the recall queries;
    /// - `serving/item.index` (herd nearline): the item ANN index;
    /// - the feature store: `storeSpec`, else the store named in `serving/nearline.json`, else the
    ///   embedded `serving/features.store`;
    /// - the ranking export: `rankingModel` is a model name under `models/` (its latest version)
    ///   or the path of an export directory;
    /// - popular items: positives per item in `features/train.herdtable` (the export's labels),
    ///   else the item table's order.
    ///
    /// `log` gets one line per loaded piece (and the missing ranking columns).
    public static func load(workspace w: Workspace, storeSpec: String? = nil, rankingModel: String = "wnd",
                            config: RecommenderConfig = RecommenderConfig(), log: (String) -> Void = { _ in }) throws -> Recommender {
        try w.require(w.embeddingTable("user"), writtenBy: "herd predict --workspace \(w.root.path) --model <two-tower> --embeddings")
        try w.require(w.itemIndex, writtenBy: "herd nearline --workspace \(w.root.path)")
        let users = try UserEmbeddings(url: w.embeddingTable("user"))
        let index = try loadIndex(from: w.itemIndex)
        log("recommender: \(users.count) user embeddings [\(users.dimension)], item index \(index.spec) with \(index.count) vectors")

        let spec = try storeSpec ?? nearlineStoreSpec(w)
        if spec.hasPrefix("embedded:") { try w.require(URL(fileURLWithPath: String(spec.dropFirst("embedded:".count))), writtenBy: "herd nearline --workspace \(w.root.path)") }
        let store = try makeFeatureStore(spec: spec)

        let exportURL = try rankingExportURL(w, rankingModel: rankingModel)
        let ranking = try ModelExport.load(from: exportURL, precision: config.rankingPrecision)
        log("recommender: ranking model \(ranking.config.kind.rawValue) (\(config.rankingPrecision.rawValue)\(config.rankingPrecision == .bf16 ? ", " + BF16GEMM.note : "")) from \(exportURL.path), feature store \(store.spec)")

        // NOTE: a store that is down at start-up must not keep the service from starting (it answers
        // degraded until the store is back): the columns then come from the workspace tables.
        var schemas: [EntityKind: FeatureSchema] = [:]
        for kind in EntityKind.allCases {
            do {
                if let s = try store.schema(kind: kind) { schemas[kind] = s; continue }
            } catch {
                log("recommender: the feature store cannot tell its \(kind) columns (\(error)); taking them from \(w.table(kind.rawValue).lastPathComponent)")
            }
            schemas[kind] = try tableSchema(w, kind: kind, store: store)
        }

        let itemKey = schemas[.item]!.keyColumn
        let popular = try popularItems(w, itemKey: itemKey, labels: ranking.featureState.batchSpec?.labels ?? [], limit: config.popularItems)
        log("recommender: \(popular.ids.count) popular items for cold start (\(popular.origin))")
        let context = ServingContext(userEmbeddings: users, index: index, store: store, ranking: ranking, popular: popular,
                                     userSchema: schemas[.user], itemSchema: schemas[.item])
        return try Recommender(context: context, config: config, log: log)
    }

    /// The export directory of `rankingModel`: a model name under `W/models` (its latest version)
    /// or the path of an export directory.
    public static func rankingExportURL(_ w: Workspace, rankingModel: String) throws -> URL {
        var isDirectory: ObjCBool = false
        if rankingModel.contains("/"), FileManager.default.fileExists(atPath: rankingModel, isDirectory: &isDirectory), isDirectory.boolValue {
            return URL(fileURLWithPath: rankingModel)
        }
        return try w.latestModel(rankingModel)
    }

    /// The store `herd nearline` last wrote to, or the embedded store file.
    public static func nearlineStoreSpec(_ w: Workspace) throws -> String {
        if let data = try? Data(contentsOf: w.nearlineSummary), let s = try? JSONDecoder().decode(NearlineSummary.self, from: data) {
            return s.store
        }
        return "embedded:\(w.featureStoreFile.path)"
    }

    /// The schema of a side table in the workspace, keyed by the embeddings' `key_column`.
    static func tableSchema(_ w: Workspace, kind: EntityKind, store: any FeatureStore) throws -> FeatureSchema? {
        let url = w.table(kind.rawValue)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ServingError("the feature store \(store.spec) gave no \(kind) columns and \(url.path) is missing: run `herd nearline` (and start the store)")
        }
        let embeddings = w.embeddingTable(kind.rawValue)
        guard FileManager.default.fileExists(atPath: embeddings.path), let key = try SafeTensorsFile(url: embeddings).metadata["key_column"] else {
            throw ServingError("the feature store \(store.spec) gave no \(kind) columns and \(embeddings.lastPathComponent) names no key_column: run `herd nearline` first")
        }
        return try FeatureSchema(table: TableFile.read(path: url.path), keyColumn: key)
    }

    /// Popular items from the training table's positives, else the item table's order.
    public static func popularItems(_ w: Workspace, itemKey: String, labels: [String], limit: Int) throws -> PopularItems {
        let train = w.table("train")
        if FileManager.default.fileExists(atPath: train.path) {
            let names = Set(try TableFile.columnNames(path: train.path))
            let present = labels.filter(names.contains)
            if names.contains(itemKey), !present.isEmpty {
                let table = try TableFile.read(path: train.path, columns: [itemKey] + present)
                return try PopularItems.count(in: table, keyColumn: itemKey, labels: present, limit: limit,
                                              origin: "\(train.lastPathComponent) positives of \(present.joined(separator: ", "))")
            }
        }
        let item = w.table("item")
        guard FileManager.default.fileExists(atPath: item.path) else { return PopularItems(ids: [], rates: [], origin: "none: no train or item table") }
        let column = try TableFile.read(path: item.path, columns: [itemKey]).column(itemKey)
        return PopularItems.inOrder(column.int64Values ?? [], limit: limit, origin: "\(item.lastPathComponent) order (no labelled training rows)")
    }
}
