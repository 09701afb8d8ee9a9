import Foundation
@testable import HerdCLI
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor
import HerdTraining
import XCTest

/// Checks on the real MovieLens-100k, skipped unless `HERD_MOVIELENS_DIR` names a directory with
/// it (never committed; RecBole's copy: `pip download recbole==1.2.1 --no-deps -d /tmp/rb && unzip
/// -o /tmp/rb/recbole-1.2.1-py3-none-any.whl 'recbole/dataset_example/ml-100k/*' -d /tmp/rb`, then
/// `HERD_MOVIELENS_DIR=/tmp/rb/recbole/dataset_example/ml-100k`).
final class MovieLensRealDataTests: XCTestCase {
    func testRealMovieLens100k() throws {
        guard let dir = ProcessInfo.processInfo.environment["HERD_MOVIELENS_DIR"], !dir.isEmpty else {
            throw XCTSkip("set HERD_MOVIELENS_DIR to a MovieLens-100k directory (GroupLens or RecBole layout)")
        }
        let data = try MovieLens.read(directory: dir)
        XCTAssertEqual(data.interactions.rowCount, 100_000)
        XCTAssertEqual(data.users.rowCount, 943)
        XCTAssertEqual(data.items.rowCount, 1682)
        let ratings = try data.interactions.column("rating").doubleValues!
        XCTAssertEqual(Set(ratings), [1, 2, 3, 4, 5])
        let liked = ratings.filter { $0 >= 4 }.count
        print("ml-100k (\(data.layout.rawValue)): \(liked) ratings >= 4 of \(ratings.count)")

        let f = try MovieLens.preprocess(data)
        XCTAssertEqual(f.test.rowCount, 943)
        XCTAssertEqual(f.train.rowCount, 100_000 - 943)
        XCTAssertEqual(f.users.rowCount, 943)
        let ws = Workspace(path: try CLIFixtures.scratch("ml100k").path)
        try ws.create()
        for (name, t) in [("train", f.train), ("test", f.test), ("user", f.users), ("item", f.items)] { try TableFile.write(t, to: ws.table(name).path) }
        // Random embeddings: the model numbers are a random ranking; the popularity numbers are
        // the baseline the two-tower model must beat on this split.
        var rng = SplitMix64(seed: 1)
        for (side, t, key) in [("user", f.users, "user_id"), ("item", f.items, "item_id")] {
            let ids = try t.column(key).int64Values!
            try EmbeddingsFile(ids: ids, embeddings: Tensor(shape: [ids.count, 16], values: (0..<(ids.count * 16)).map { _ in rng.nextUniform() - 0.5 }))
                .write(to: ws.embeddingTable(side))
        }
        let r = try RetrievalEvaluation.run(workspace: ws, k: 10)
        print(String(format: "ml-100k leave-last-out: %d test users with a positive, %d items; popularity recall@10 %.4f ndcg@10 %.4f; random recall@10 %.4f ndcg@10 %.4f; %d unknown positives",
                     r.model.users, r.items, r.popularity.recall, r.popularity.ndcg, r.model.recall, r.model.ndcg, r.unknownPositives))
        XCTAssertGreaterThan(r.popularity.recall, 3 * r.model.recall, "popularity should beat a random ranking by far")
    }

    /// Trains a small two-tower model on the real data through the library and evaluates it like
    /// `herd evaluate retrieval` (an experiment for the workflow's target, recall@10 ≥ 1.5× the
    /// popularity baseline; `HERD_MOVIELENS_TT=1` turns it on, it takes minutes in debug).
    func testTwoTowerAgainstPopularity() throws {
        guard let dir = ProcessInfo.processInfo.environment["HERD_MOVIELENS_DIR"], !dir.isEmpty,
              ProcessInfo.processInfo.environment["HERD_MOVIELENS_TT"] == "1" else {
            throw XCTSkip("set HERD_MOVIELENS_DIR and HERD_MOVIELENS_TT=1")
        }
        let env = ProcessInfo.processInfo.environment
        let f = try MovieLens.preprocess(try MovieLens.read(directory: dir))
        let ws = Workspace(path: try CLIFixtures.scratch("ml100k-tt").path)
        try ws.create()
        for (name, t) in [("train", f.train), ("test", f.test), ("user", f.users), ("item", f.items)] { try TableFile.write(t, to: ws.table(name).path) }
        let userCols = MovieLens.userColumns, itemCols = MovieLens.itemColumns
        let spec = BatchSpec(sparse: (userCols + itemCols).map { .init(name: $0, cardinality: f.sizes[$0]!) }, dense: [], labels: ["label"])
        let positives = try f.train.filter("label", numeric: { $0 == 1 }).select(userCols + ["item_id"])
        let loss = TwoTowerLoss(rawValue: env["HERD_TT_LOSS"] ?? "bce")!
        let negatives = Int(env["HERD_TT_NEG"] ?? "4")!
        var rows = positives
        if loss == .bce && negatives == 0 {  // the training table's own labels (liked vs rated lower)
            rows = try f.train.select(userCols + ["item_id", "label"])
        } else if loss == .bce {
            rows = try positives.addNegativeSamples(itemSize: f.sizes["item_id"]!, itemColumn: "item_id", negNum: negatives, seed: 1)
        } else {
            rows = try rows.with("label", Column(int64s: [Int64](repeating: 1, count: rows.rowCount)))
        }
        rows = try rows.join(f.items, on: ["item_id"])
        let mlp = (env["HERD_TT_MLP"] ?? "64,32").split(separator: ",").map { Int($0)! }
        var cfg = TwoTowerConfig(tableSizes: spec.sparse.map(\.cardinality),
                                 user: TowerConfig(sparseFeatures: Array(0..<userCols.count), mlp: mlp),
                                 item: TowerConfig(sparseFeatures: Array(userCols.count..<(userCols.count + itemCols.count)), mlp: mlp))
        cfg.loss = loss
        cfg.embeddingDim = Int(env["HERD_TT_DIM"] ?? "16")!
        cfg.temperature = Float(env["HERD_TT_TAU"] ?? "0.2")!
        var c = TrainerConfig()
        c.epochs = Int(env["HERD_TT_EPOCHS"] ?? "5")!
        c.batchSize = Int(env["HERD_TT_BATCH"] ?? "512")!
        c.schedule = LearningRateSchedule(base: Float(env["HERD_TT_LR"] ?? "0.003")!)
        c.optimizers = ["dense": "adam", "sparse": "lazy_adam"]
        let model = try TwoTower(config: cfg)
        let t0 = Date()
        _ = try Trainer(model: model, config: c, train: InMemoryBatchSource(try rows.batch(spec)), valid: nil).run()
        let trainSeconds = Date().timeIntervalSince(t0)
        // One side's table with the other side's columns as zeros → that tower's embeddings.
        func sideBatch(_ t: FeatureTable) throws -> Batch {
            var full = t
            for name in userCols + itemCols where !t.contains(name) {
                let column = ["genres", "item_id_hist_seq"].contains(name) ? Column(int64Lists: [[Int64]?](repeating: [], count: t.rowCount))
                                              : Column(int64s: [Int64?](repeating: 0, count: t.rowCount))
                full = try full.with(name, column)
            }
            return try full.with("label", Column(int64s: [Int64?](repeating: 0, count: t.rowCount))).batch(spec)
        }
        try EmbeddingsFile(ids: try f.users.column("user_id").int64Values!, embeddings: model.userEmbeddings(try sideBatch(f.users)),
                           metadata: ["key_column": "user_id"]).write(to: ws.embeddingTable("user"))
        try EmbeddingsFile(ids: try f.items.column("item_id").int64Values!, embeddings: model.itemEmbeddings(try sideBatch(f.items)),
                           metadata: ["key_column": "item_id"]).write(to: ws.embeddingTable("item"))
        let r = try RetrievalEvaluation.run(workspace: ws, k: 10)
        print(String(format: "ml-100k two-tower (%@, %d neg, mlp %@, dim %d, tau %.2f, %d epochs, %.0f s): recall@10 %.4f ndcg@10 %.4f; popularity recall@10 %.4f ndcg@10 %.4f; ratio %.2f",
                     loss.rawValue, negatives, mlp.description, cfg.embeddingDim, cfg.temperature, c.epochs, trainSeconds,
                     r.model.recall, r.model.ndcg, r.popularity.recall, r.popularity.ndcg, r.model.recall / r.popularity.recall))
    }
}
