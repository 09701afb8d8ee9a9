import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdTensor
import HerdTraining

/// `herd evaluate retrieval --workspace W [--k 10] [--json]`
///
/// Exact top-k retrieval by inner product of `W/embeddings/user.safetensors` against
/// `W/embeddings/item.safetensors`, scored against the test positives of
/// `W/features/test.herdtable`, each user's training items (`W/features/train.herdtable`)
/// excluded, next to the most-popular baseline on the same split.
public struct EvaluateRetrieval: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "retrieval",
        abstract: "Recall@k and NDCG@k of the two-tower embeddings on the test split, against the most-popular baseline.",
        discussion: """
            Test positives are the test rows with label = 1 (MovieLens: each user's latest rating if >= 4); every \
            training row's item is excluded from that user's ranking; popularity counts the training positives. \
            Users are averaged over those with at least one test positive.
            """)

    @Option(help: "Workspace: reads embeddings/{user,item}.safetensors and features/{train,test}.herdtable.")
    var workspace: String = Workspace.defaultPath

    @Option(help: "Length of the retrieved list.")
    var k: Int = 10

    @Option(help: "User key column in the tables (default: the embeddings' key_column metadata, else user_id).")
    var userColumn: String?

    @Option(help: "Item key column in the tables (default: the embeddings' key_column metadata, else item_id).")
    var itemColumn: String?

    @Option(help: "Label column of the tables (1 = positive).")
    var label: String = "label"

    @Flag(help: "Print one JSON object as the last line (other output goes to stderr).")
    var json = false

    public init() {}

    public func validate() throws {
        guard k >= 1 else { throw ValidationError("--k must be >= 1, got \(k)") }
    }

    public func run() throws {
        let ws = Workspace(path: workspace)
        let result = try RetrievalEvaluation.run(
            workspace: ws, k: k, userColumn: userColumn, itemColumn: itemColumn, label: label)
        let m = result.model, p = result.popularity
        let ratio = p.recall > 0 ? m.recall / p.recall : nil
        let log = { (s: String) in
            if json { FileHandle.standardError.write(Data((s + "\n").utf8)) } else { print(s) }
        }
        log("\(m.users) users with test positives, \(result.items) items, \(result.usersWithoutEmbedding) users without an embedding, \(result.unknownPositives) positives without an item embedding")
        log(String(format: "two-tower   recall@%d %.4f  ndcg@%d %.4f  hit rate %.4f", k, m.recall, k, m.ndcg, m.hitRate))
        log(String(format: "popularity  recall@%d %.4f  ndcg@%d %.4f  hit rate %.4f", k, p.recall, k, p.ndcg, p.hitRate))
        log(ratio.map { String(format: "recall ratio %.2fx the popularity baseline", $0) } ?? "recall ratio undefined (popularity recall is 0)")
        for (name, sub) in [("seen in training", result.seen), ("unseen in training", result.unseen)] {
            if let sub {
                log(String(format: "users %@: %d, recall@%d %.4f  ndcg@%d %.4f (popularity %.4f, %.4f)", name, sub.model.users, k, sub.model.recall, k,
                           sub.model.ndcg, sub.popularity.recall, sub.popularity.ndcg))
            }
        }
        if json {
            var d: [String: Any] = [
                "k": k, "users": m.users, "items": result.items, "users_without_embedding": result.usersWithoutEmbedding,
                "unknown_positives": result.unknownPositives,
                "recall@\(k)": m.recall, "ndcg@\(k)": m.ndcg, "hit_rate@\(k)": m.hitRate,
                "popularity_recall@\(k)": p.recall, "popularity_ndcg@\(k)": p.ndcg, "popularity_hit_rate@\(k)": p.hitRate,
            ]
            d["recall_ratio"] = ratio ?? NSNull()
            for (name, sub) in [("seen", result.seen), ("unseen", result.unseen)] {
                guard let sub else { continue }
                d["users_\(name)"] = sub.model.users
                d["recall@\(k)_\(name)"] = sub.model.recall
                d["ndcg@\(k)_\(name)"] = sub.model.ndcg
                d["popularity_recall@\(k)_\(name)"] = sub.popularity.recall
                d["popularity_ndcg@\(k)_\(name)"] = sub.popularity.ndcg
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        }
    }
}

/// The retrieval evaluation behind `herd evaluate retrieval`, on workspace files.
struct RetrievalEvaluation {
    var model: RetrievalMetrics
    var popularity: RetrievalMetrics
    /// Items in the catalogue (rows of the item embeddings).
    var items: Int
    /// Evaluated users with no row in the user embeddings (they retrieve nothing).
    var usersWithoutEmbedding: Int
    /// Test positives whose item has no embedding row (never retrievable; counted as misses).
    var unknownPositives: Int
    /// The two-tower's and the popularity baseline's metrics over users seen / unseen in training
    /// (id in / out of the training index), when the test rows say which (nil otherwise).
    var seen: (model: RetrievalMetrics, popularity: RetrievalMetrics)?
    var unseen: (model: RetrievalMetrics, popularity: RetrievalMetrics)?

    static func run(workspace ws: Workspace, k: Int, userColumn: String? = nil, itemColumn: String? = nil, label: String = "label") throws -> RetrievalEvaluation {
        let userURL = ws.embeddingTable("user"), itemURL = ws.embeddingTable("item")
        for url in [userURL, itemURL] { try ws.require(url, writtenBy: "herd predict --workspace \(ws.root.path) --name twotower") }
        for name in ["train", "test"] { try ws.require(ws.table(name), writtenBy: "herd preprocess … --workspace \(ws.root.path)") }
        let users = try EmbeddingsFile.read(url: userURL)
        let items = try EmbeddingsFile.read(url: itemURL)
        guard users.embeddings.shape[1] == items.embeddings.shape[1] else {
            throw TrainingError("\(userURL.path) has \(users.embeddings.shape[1])-wide embeddings but \(itemURL.path) has \(items.embeddings.shape[1]): they must come from the same model")
        }
        let userKey = userColumn ?? users.keyColumn ?? "user_id"
        let itemKey = itemColumn ?? items.keyColumn ?? "item_id"
        // NOTE: embeddings that include entities unseen in training (`herd predict` on a workspace
        // with <side>_unseen tables) are keyed by a row key column that tells those apart (their
        // id is 0); the tables are read by it, and a user is unseen where the id column is 0.
        let userRowKey = users.metadata["row_key_column"], itemRowKey = items.metadata["row_key_column"]
        let trainURL = ws.table("train"), testURL = ws.table("test")
        for (col, url) in [(userRowKey, trainURL), (userRowKey, testURL), (itemRowKey, trainURL), (itemRowKey, testURL)] {
            if let col, !(try TableFile.columnNames(path: url.path)).contains(col) {
                throw TrainingError("\(url.path) has no column \(col) (named by the embeddings' row_key_column): run `herd preprocess` again")
            }
        }
        let train = try readKeys(trainURL.path, userRowKey ?? userKey, itemRowKey ?? itemKey, label)
        let test = try readKeys(testURL.path, userRowKey ?? userKey, itemRowKey ?? itemKey, label)
        let unseen = userRowKey == nil ? nil : try readKeys(testURL.path, userKey, itemKey, label).users.map { $0 == 0 }
        return try evaluate(users: users, items: items, train: train, test: test, k: k, unseenUsers: unseen)
    }

    /// (user, item, label) columns of a table file, checked.
    static func readKeys(_ path: String, _ user: String, _ item: String, _ label: String) throws -> (users: [Int64], items: [Int64], labels: [Int64]) {
        let t = try TableFile.read(path: path, columns: [user, item, label])
        func ints(_ name: String) throws -> [Int64] {
            let c = try t.column(name)
            guard let v = c.int64Values else {
                throw FeatureError.invalidArgument("\(path): column '\(name)' is \(c.type); expected the int64 (encoded) column")
            }
            if c.nullCount > 0 { throw FeatureError.invalidArgument("\(path): column '\(name)' has \(c.nullCount) nulls") }
            return v
        }
        return (try ints(user), try ints(item), try ints(label))
    }

    /// NOTE: users are grouped by key, except key 0 (unknown: a user never seen in training):
    /// each such test row is its own query with no embedding and no exclusions, rather than all
    /// unknown users being merged into one.
    static func evaluate(
        users: EmbeddingsFile, items: EmbeddingsFile, train: (users: [Int64], items: [Int64], labels: [Int64]),
        test: (users: [Int64], items: [Int64], labels: [Int64]), k: Int, unseenUsers: [Bool]? = nil
    ) throws -> RetrievalEvaluation {
        let userRow = users.rowOfID, itemRow = items.rowOfID
        // Queries: one per user with a test positive, in order of first appearance in test.
        var queryOf: [Int64: Int] = [:]
        var rows: [Int] = [], relevant: [[Int]] = [], queryUsers: [Int64] = [], queryUnseen: [Bool] = []
        var unknownPositives = 0
        for (r, u) in test.users.enumerated() where test.labels[r] == 1 {
            let item = itemRow[test.items[r]] ?? -1
            if item < 0 { unknownPositives += 1 }
            if u != 0, let q = queryOf[u] {
                relevant[q].append(item)
                continue
            }
            if u != 0 { queryOf[u] = rows.count }
            rows.append(u == 0 ? -1 : userRow[u] ?? -1)
            relevant.append([item])
            queryUsers.append(u)
            queryUnseen.append(unseenUsers?[r] ?? false)
        }
        // Exclusions (every training item of the user) and popularity (training positives).
        var exclude = [[Int]](repeating: [], count: rows.count)
        var counts = [Int](repeating: 0, count: items.ids.count)
        for (r, u) in train.users.enumerated() {
            guard let i = itemRow[train.items[r]] else { continue }
            if train.labels[r] == 1 { counts[i] += 1 }
            if u != 0, let q = queryOf[u] { exclude[q].append(i) }
        }
        let retrieved = try Retrieval.topK(users: users.embeddings, rows: rows, items: items.embeddings, k: k, exclude: exclude)
        let popular = Retrieval.popularTopK(counts: counts, k: k, exclude: exclude)
        func subset(_ unseen: Bool) throws -> (model: RetrievalMetrics, popularity: RetrievalMetrics)? {
            let q = queryUnseen.indices.filter { queryUnseen[$0] == unseen }
            guard !q.isEmpty else { return nil }
            let rel = q.map { relevant[$0] }
            return (try Retrieval.metrics(retrieved: q.map { retrieved[$0] }, relevant: rel, k: k),
                    try Retrieval.metrics(retrieved: q.map { popular[$0] }, relevant: rel, k: k))
        }
        return RetrievalEvaluation(
            model: try Retrieval.metrics(retrieved: retrieved, relevant: relevant, k: k),
            popularity: try Retrieval.metrics(retrieved: popular, relevant: relevant, k: k),
            items: items.ids.count, usersWithoutEmbedding: rows.filter { $0 < 0 }.count, unknownPositives: unknownPositives,
            seen: unseenUsers == nil ? nil : try subset(false), unseen: unseenUsers == nil ? nil : try subset(true))
    }
}
