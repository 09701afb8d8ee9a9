import Foundation
import XCTest

/// `herd bench ranking` on a small served workspace: runs end to end, the hoisted and plain first
/// layers agree, and the hoisted one executes fewer multiply-adds than the plain one, which
/// executes fewer than the dense-equivalent count (indicator row adds).
final class BenchRankingCLITests: XCTestCase {
    func testBenchRankingComparesHoistedAndPlainOnRequestShapedBatches() throws {
        let ws = try CLIFixtures.servedWorkspace("bench-ranking-ws", seed: 7, rows: 2000)
        let run = try HerdBinary.run(["bench", "ranking", "--workspace", ws.root.path, "--cank", "20", "--requests", "6", "--repeats", "1", "--json"],
                                     timeout: 120)
        XCTAssertTrue(run.succeeded, run.transcript)
        let j = try run.lastJSON()
        let plain = try XCTUnwrap(j["plain"] as? [String: Any]), hoisted = try XCTUnwrap(j["hoisted"] as? [String: Any])
        let dense = try XCTUnwrap(j["dense_mflop_per_row"] as? Double)
        let p = try XCTUnwrap(plain["executed_mflop_per_row"] as? Double), h = try XCTUnwrap(hoisted["executed_mflop_per_row"] as? Double)
        XCTAssertLessThan(p, dense, "indicator ids are row adds")
        XCTAssertLessThan(h, p, "the user's columns are multiplied once per request")
        XCTAssertLessThan(try XCTUnwrap(j["max_abs_logit_diff"] as? Double), 1e-4)
        XCTAssertGreaterThan(try XCTUnwrap(hoisted["rows_per_s"] as? Double), 0)
    }

    func testBenchRankingWithoutAModelSaysWhatToRun() throws {
        let empty = try CLIFixtures.scratch("bench-ranking-empty").path
        assertFailsCleanly(try HerdBinary.run(["bench", "ranking", "--workspace", empty]), mentioning: ["herd train"])
    }
}
