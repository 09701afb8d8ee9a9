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
}
