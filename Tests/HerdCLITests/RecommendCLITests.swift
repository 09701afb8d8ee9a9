import Foundation
import HerdFeatures
import HerdTraining
import XCTest

/// `herd recommend` after the whole workflow from the CLI: generate → preprocess recsys2021 →
/// train wnd and twotower (1 epoch) → predict --embeddings → nearline → recommend.
final class RecommendCLITests: XCTestCase {
    func testRecommendAfterTheWorkflow() throws {
        let ws = try CLIFixtures.servedWorkspace("recommend-ws", seed: 7)
        let w = ws.root.path
        let users = try TableFile.read(path: ws.table("user").path, columns: ["enaging_user_id"]).column("enaging_user_id").int64Values!
        // Tweets unseen in training are in the index too (embedded from their other features), under their row keys.
        let unseenItems = try TableFile.read(path: ws.table("item_unseen").path, columns: ["tweet_id_key"]).column("tweet_id_key").int64Values!
        let items = Set(try TableFile.read(path: ws.table("item").path, columns: ["tweet_id"]).column("tweet_id").int64Values!)
            .union(unseenItems)

        let known = try HerdBinary.run(["recommend", "--workspace", w, "--user", String(users[0]), "--k", "5", "--can-k", "40", "--json"])
        let answer = try assertSucceededJSON(known)
        let ids = try XCTUnwrap(answer["ids"] as? [Int]).map(Int64.init)
        let probs = try XCTUnwrap(answer["probs"] as? [Double])
        XCTAssertEqual(ids.count, 5)
        XCTAssertEqual(Set(ids).count, 5)
        XCTAssertTrue(ids.allSatisfy(items.contains), "\(ids)")
        XCTAssertEqual(probs, probs.sorted(by: >))
        XCTAssertEqual(answer["success"] as? Bool, true)
        XCTAssertEqual(answer["source"] as? String, "ranked")
        XCTAssertTrue(answer["errorCode"] is NSNull)
        let timings = try XCTUnwrap(answer["timingsMs"] as? [String: Double])
        XCTAssertEqual(Set(timings.keys), ["recall", "features", "preprocess", "ranking", "top_k", "total"])
        XCTAssertTrue(known.stderr.contains("engagee_follows_engager"), known.stderr)

        let cold = try assertSucceededJSON(try HerdBinary.run(["recommend", "--workspace", w, "--user", "987654321", "--k", "3", "--json"]))
        XCTAssertEqual(cold["coldStart"] as? Bool, true)
        XCTAssertEqual((cold["ids"] as? [Int])?.count, 3)

        // A user unseen in training (asked by row key) is ranked, not cold-started, and every candidate —
        // the unseen tweets among them — has feature rows (nearline stores the unseen tables under their row keys).
        XCTAssertFalse(unseenItems.isEmpty)
        let unseenUser = try XCTUnwrap(try TableFile.read(path: ws.table("user_unseen").path, columns: ["enaging_user_id_key"])
            .column("enaging_user_id_key").int64Values?.first)
        let all = try assertSucceededJSON(try HerdBinary.run(["recommend", "--workspace", w, "--user", String(unseenUser),
                                                              "--k", "10", "--can-k", String(items.count), "--json"]))
        XCTAssertEqual(all["source"] as? String, "ranked")
        XCTAssertNotEqual(all["coldStart"] as? Bool, true)
        let allIDs = try XCTUnwrap(all["ids"] as? [Int]).map(Int64.init)
        XCTAssertEqual(allIDs.count, 10)
        XCTAssertTrue(allIDs.allSatisfy(items.contains), "\(allIDs)")

        let text = try HerdBinary.run(["recommend", "--workspace", w, "--user", String(users[1]), "--k", "3"])
        XCTAssertTrue(text.succeeded, text.transcript)
        XCTAssertTrue(text.stdout.contains("stage ms: recall"), text.stdout)

        assertFailsCleanly(try HerdBinary.run(["recommend", "--workspace", w, "--user", "1", "--k", "20", "--can-k", "10"]), mentioning: ["canK = 10"])
        assertFailsCleanly(try HerdBinary.run(["recommend", "--workspace", CLIFixtures.scratch("recommend-empty").path, "--user", "1"]),
                           mentioning: ["user.safetensors is missing", "herd predict"])
    }
}
