import Foundation
import HerdFeatures
import HerdTraining
import XCTest

/// Users and tweets whose id is not in the training index (new in test, or rarer than the
/// frequency limit): preprocess gives them row keys and the user_unseen/item_unseen tables,
/// `herd predict` embeds them from their other features, `herd evaluate retrieval` counts them.
final class UnseenEntitiesCLITests: XCTestCase {
    func testPredictEmbedsUnseenUsersAndEvaluateCountsThem() throws {
        let w = try CLIFixtures.scratch("recsys-unseen").path
        let ws = Workspace(path: w)
        for args in [["generate", "recsys2021", "--rows", "6000", "--users", "3000", "--items", "1500", "--seed", "5", "--workspace", w],
                     ["preprocess", "recsys2021", "--workspace", w],
                     // NOTE: two_tower.json's user tower reads the user's follower bins and is_verified besides
                     // the id (two_tower_retrieval.json's reads the id only: unseen users share one embedding).
                     ["train", "--workspace", w, "--model", "twotower", "--spec", "examples/recsys2021/two_tower.json".relativeToPackage,
                      "--name", "tt", "--epochs", "1", "--batch-size", "256", "--seed", "1"]] {
            let run = try HerdBinary.run(args, timeout: 120)
            XCTAssertTrue(run.succeeded, run.transcript)
            guard run.succeeded else { return }
        }
        let sizes = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: ws.sizes)) as? [String: Int])
        let test = try TableFile.read(path: ws.table("test").path)
        var unseenCounts: [String: Int] = [:]
        for (side, key) in [("user", "enaging_user_id"), ("item", "tweet_id")] {
            let known = try TableFile.read(path: ws.table(side).path)
            let unseen = try TableFile.read(path: ws.table("\(side)_unseen").path)
            let rowKey = key + "_key"
            XCTAssertEqual(unseen.names, [rowKey] + known.names)
            let keys = try XCTUnwrap(unseen[rowKey].int64Values)
            XCTAssertGreaterThan(keys.count, 10, "\(side): unseen entities exist with 3000 users over 6000 rows")
            XCTAssertEqual(Set(keys).count, keys.count, "\(rowKey) is unique")
            XCTAssertTrue(keys.allSatisfy { $0 >= Int64(sizes[key]!) }, "row keys of unseen \(side)s lie above the index")
            XCTAssertEqual(unseen[key].int64Values.map { Set($0) }, [0])
            // Test rows with id 0 carry a row key found in the unseen table; known ids keep their id.
            let ids = test[key].int64Values!, rows = test[rowKey].int64Values!
            for r in 0..<test.rowCount {
                if ids[r] == 0 { XCTAssertTrue(Set(keys).contains(rows[r]), "test row \(r)") } else { XCTAssertEqual(rows[r], ids[r]) }
            }
            unseenCounts[side] = keys.count
        }

        let predict = try assertSucceededJSON(try HerdBinary.run(["predict", "--workspace", w, "--name", "tt", "--json"]))
        for side in ["user", "item"] {
            let known = try TableFile.read(path: ws.table(side).path).rowCount
            XCTAssertEqual(predict["\(side)s_unseen"] as? Int, unseenCounts[side])
            XCTAssertEqual(predict["\(side)s"] as? Int, known + unseenCounts[side]!)
            let file = try EmbeddingsFile.read(url: ws.embeddingTable(side))
            XCTAssertEqual(file.ids.count, known + unseenCounts[side]!)
            XCTAssertEqual(Set(file.ids).count, file.ids.count)
            XCTAssertEqual(file.metadata["unseen"], String(unseenCounts[side]!))
            // Unseen entities share the OOV id embedding but not their other features: not all equal.
            let e = file.embeddings.shape[1]
            let rows = Set((known..<file.ids.count).map { r in (0..<e).map { file.embeddings[r * e + $0] } })
            XCTAssertGreaterThan(rows.count, 1, "\(side): unseen embeddings come from each one's features")
        }

        let eval = try assertSucceededJSON(try HerdBinary.run(["evaluate", "retrieval", "--workspace", w, "--k", "10", "--json"]))
        XCTAssertEqual(eval["users_without_embedding"] as? Int, 0, "every test user has an embedding")
        let seen = try XCTUnwrap(eval["users_seen"] as? Int), unseen = try XCTUnwrap(eval["users_unseen"] as? Int)
        XCTAssertEqual(seen + unseen, eval["users"] as? Int)
        XCTAssertGreaterThan(unseen, 0)
        XCTAssertNotNil(number(eval, "recall@10_unseen"))
        XCTAssertNotNil(number(eval, "recall@10_seen"))
    }

    /// A retrieval two-tower (in-batch softmax, logQ, per-item bias: users written as `[u, 1]`)
    /// whose user tower reads the user table's features besides the id: `herd predict` passes each
    /// unseen user's own features, so two unseen users (both id 0) with different verified flags or
    /// follower/following bins get different embeddings, and two with the same features the same one.
    func testRetrievalSpecWithUserFeaturesEmbedsUnseenUsersByTheirFeatures() throws {
        let scratch = try CLIFixtures.scratch("recsys-unseen-features")
        let w = scratch.appendingPathComponent("ws").path
        let ws = Workspace(path: w)
        let userFeatures = ["enaging_user_is_verified", "enaging_user_follower_count", "enaging_user_following_count"]
        let spec = scratch.appendingPathComponent("retrieval_user_features.json")
        let specObject: [String: Any] = [
            "model": "twotower", "labels": ["reply", "retweet", "retweet_with_comment", "like"],
            "user": ["id": "enaging_user_id", "indicator_cols": userFeatures, "embed_cols": ["enaging_user_id"]],
            "item": ["id": "tweet_id", "embed_cols": ["tweet_id", "engaged_with_user_id", "hashtags"]],
            "hidden_units": [32, 16], "embed_dim": 8, "loss": "in_batch_softmax", "temperature": 0.5,
            "logq_correction": true, "item_bias": true,
        ]
        try JSONSerialization.data(withJSONObject: specObject).write(to: spec)
        for args in [["generate", "recsys2021", "--rows", "6000", "--users", "3000", "--items", "1500", "--seed", "5", "--workspace", w],
                     ["preprocess", "recsys2021", "--workspace", w],
                     ["train", "--workspace", w, "--model", "twotower", "--spec", spec.path, "--name", "tt", "--epochs", "1",
                      "--batch-size", "256", "--seed", "1"]] {
            let run = try HerdBinary.run(args, timeout: 120)
            XCTAssertTrue(run.succeeded, run.transcript)
            guard run.succeeded else { return }
        }
        _ = try assertSucceededJSON(try HerdBinary.run(["predict", "--workspace", w, "--name", "tt", "--json"]))

        let unseen = try TableFile.read(path: ws.table("user_unseen").path)
        let keys = try XCTUnwrap(unseen["enaging_user_id_key"].int64Values)
        let features = try userFeatures.map { try XCTUnwrap(unseen[$0].int64Values) }
        let file = try EmbeddingsFile.read(url: ws.embeddingTable("user"))
        XCTAssertEqual(file.metadata["row_key_column"], "enaging_user_id_key")
        let e = file.embeddings.shape[1]
        let rowOf = file.rowOfID
        func embedding(_ key: Int64) throws -> [Float] {
            let r = try XCTUnwrap(rowOf[key], "unseen user \(key) has an embedding")
            return (0..<e).map { file.embeddings[r * e + $0] }
        }
        // Unseen users grouped by their feature values (every one's id is 0).
        var groups: [[Int64]: [Int64]] = [:]
        for r in keys.indices { groups[features.map { $0[r] }, default: []].append(keys[r]) }
        XCTAssertGreaterThan(groups.count, 1, "unseen users with different features exist")
        var byFeatures: [[Int64]: [Float]] = [:]
        for (f, members) in groups {
            let first = try embedding(members[0])
            XCTAssertEqual(first[e - 1], 1, "users are written [u, 1] with an item bias")
            for key in members.dropFirst() {
                let other = try embedding(key)
                for c in 0..<e { XCTAssertEqual(other[c], first[c], accuracy: 1e-5, "same features \(f): same embedding") }
            }
            byFeatures[f] = first
        }
        let vectors = Array(byFeatures.values)
        for i in vectors.indices {
            for j in vectors.indices where j > i {
                let distance = zip(vectors[i], vectors[j]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                XCTAssertGreaterThan(distance, 1e-6, "different features: different embeddings")
            }
        }
    }
}
