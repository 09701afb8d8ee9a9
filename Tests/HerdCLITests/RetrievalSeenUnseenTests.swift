import Foundation
@testable import HerdCLI
import HerdFeatures
import HerdTensor
import HerdTraining
import XCTest

/// `herd evaluate retrieval` on embeddings keyed by row keys (users unseen in training have id 0
/// and their own row key): the two-tower's and the popularity baseline's metrics per subset,
/// checked by hand.
final class RetrievalSeenUnseenTests: XCTestCase {
    /// Items 11 [1 0], 12 [0 1], 13 [.7 .7], 14 [-1 0]; seen users 1 [1 0], 2 [0 1]; an unseen
    /// user with row key 7 [0 1] (id 0 in the tables).
    func rowKeyWorkspace() throws -> Workspace {
        let ws = Workspace(path: try CLIFixtures.scratch("retrieval-subsets").path)
        try ws.create()
        try EmbeddingsFile(ids: [1, 2, 7], embeddings: Tensor(shape: [3, 2], values: [1, 0, 0, 1, 0, 1]),
                           metadata: ["key_column": "user_id", "row_key_column": "user_id_key"]).write(to: ws.embeddingTable("user"))
        try EmbeddingsFile(ids: [11, 12, 13, 14], embeddings: Tensor(shape: [4, 2], values: [1, 0, 0, 1, 0.7, 0.7, -1, 0]),
                           metadata: ["key_column": "item_id"]).write(to: ws.embeddingTable("item"))
        // (user_id, user_id_key, item_id, label)
        func write(_ name: String, _ rows: [(Int64, Int64, Int64, Int64)]) throws {
            try TableFile.write(try FeatureTable([
                ("user_id", Column(int64s: rows.map(\.0))), ("user_id_key", Column(int64s: rows.map(\.1))),
                ("item_id", Column(int64s: rows.map(\.2))), ("label", Column(int64s: rows.map(\.3))),
            ]), to: ws.table(name).path)
        }
        try write("train", [(1, 1, 11, 1), (2, 2, 12, 1), (2, 2, 11, 1), (1, 1, 14, 0)])
        // Test positives: user 1 → 13, user 2 → 14, the unseen user 7 → 12; a negative row is ignored.
        try write("test", [(1, 1, 13, 1), (2, 2, 14, 1), (0, 7, 12, 1), (2, 2, 11, 0)])
        return ws
    }

    func testSeenAndUnseenMetricsByHand() throws {
        let ws = try rowKeyWorkspace()
        let d1 = 1 / log2(3.0)
        // k = 1. Model: user 1 → 13 (11, 14 excluded): hit; user 2 → 13 (11, 12 excluded): miss;
        // user 7 (nothing excluded) → 12: hit. Popularity (training positives 11: 2, 12: 1, then
        // 13, 14): user 1 → 12, user 2 → 13, user 7 → 11: all miss.
        var r = try RetrievalEvaluation.run(workspace: ws, k: 1)
        var seen = try XCTUnwrap(r.seen), unseen = try XCTUnwrap(r.unseen)
        XCTAssertEqual(r.usersWithoutEmbedding, 0)
        XCTAssertEqual(seen.model.users, 2)
        XCTAssertEqual(unseen.model.users, 1)
        XCTAssertEqual(seen.model.recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(unseen.model.recall, 1, accuracy: 1e-12)
        XCTAssertEqual(seen.popularity.recall, 0)
        XCTAssertEqual(unseen.popularity.recall, 0)
        XCTAssertEqual(r.model.recall, 2.0 / 3, accuracy: 1e-12)
        // k = 2. Model: [13 12] hit at 0, [13 14] hit at 1, [12 13] hit at 0. Popularity: [12 13],
        // [13 14], [11 12]: every user hits at rank 1.
        r = try RetrievalEvaluation.run(workspace: ws, k: 2)
        seen = try XCTUnwrap(r.seen)
        unseen = try XCTUnwrap(r.unseen)
        XCTAssertEqual(seen.model.recall, 1, accuracy: 1e-12)
        XCTAssertEqual(seen.model.ndcg, (1 + d1) / 2, accuracy: 1e-12)
        XCTAssertEqual(unseen.model.ndcg, 1, accuracy: 1e-12)
        XCTAssertEqual(seen.popularity.recall, 1, accuracy: 1e-12)
        XCTAssertEqual(seen.popularity.ndcg, d1, accuracy: 1e-12)
        XCTAssertEqual(unseen.popularity.recall, 1, accuracy: 1e-12)
        XCTAssertEqual(unseen.popularity.ndcg, d1, accuracy: 1e-12)
        XCTAssertEqual(r.popularity.ndcg, d1, accuracy: 1e-12)
    }
}
