import Foundation
import XCTest

/// The RecSys-2021 workflow's retrieval two-tower (examples/recsys2021/two_tower_retrieval.json:
/// in-batch softmax, logQ correction, per-item bias) against the most-popular list, through the CLI
/// as `examples/recsys2021/run.sh` runs it.
final class RecSysRetrievalCLITests: XCTestCase {
    /// generate (a small pool: 400 users, 800 tweets, so users and tweets repeat) → preprocess →
    /// train the retrieval two-tower → predict → evaluate retrieval: the two-tower's recall@10
    /// must beat the popularity baseline's on the same split (by 1.5×).
    func testRetrievalTwoTowerBeatsPopularity() throws {
        let w = try CLIFixtures.scratch("recsys-retrieval").path
        for args in [["generate", "recsys2021", "--rows", "10000", "--users", "400", "--items", "800", "--seed", "3", "--workspace", w],
                     ["preprocess", "recsys2021", "--workspace", w],
                     ["train", "--workspace", w, "--model", "twotower", "--spec", "examples/recsys2021/two_tower_retrieval.json".relativeToPackage,
                      "--name", "twotower_retrieval", "--epochs", "4", "--batch-size", "256", "--lr", "0.01", "--seed", "1"],
                     ["predict", "--workspace", w, "--name", "twotower_retrieval"]] {
            let run = try HerdBinary.run(args, timeout: 120)
            XCTAssertTrue(run.succeeded, run.transcript)
            guard run.succeeded else { return }
            if args[0] == "train" { XCTAssertTrue((run.stdout + run.stderr).contains("item bias started at the log popularity of"), run.transcript) }
        }
        let run = try HerdBinary.run(["evaluate", "retrieval", "--workspace", w, "--k", "10", "--json"])
        let json = try assertSucceededJSON(run)
        let model = try XCTUnwrap(number(json, "recall@10")), popular = try XCTUnwrap(number(json, "popularity_recall@10"))
        XCTAssertGreaterThan(popular, 0)
        XCTAssertGreaterThan(model, popular, "two-tower recall@10 \(model) vs popularity \(popular)\n\(run.transcript)")
        // NOTE: measured 0.111 vs 0.046 (2.4×); the same spec without "item_bias" reaches 0.047
        // (1.02×), so the margin asked here is the bias's.
        XCTAssertGreaterThan(model, 1.5 * popular, "two-tower recall@10 \(model) vs popularity \(popular)")
        XCTAssertEqual(json["users_without_embedding"] as? Int, 0)
    }
}
