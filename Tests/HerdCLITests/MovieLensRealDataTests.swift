import Foundation
@testable import HerdCLI
import HerdFeatures
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
}
