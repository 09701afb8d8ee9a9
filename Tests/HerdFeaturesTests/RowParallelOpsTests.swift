@testable import HerdFeatures
import HerdTensor
import XCTest

/// The row-parallel ops (`FeatureTable.rowParallel`: not_null, list_length, any,
/// keep_most_frequent, min_max_scale) on tables large enough to split across workers, against
/// plain loops over Swift values.
final class RowParallelOpsTests: XCTestCase {
    let n = 3 * FeatureTable.rowParallelMinimum + 17  // several workers, uneven ranges

    func table() throws -> FeatureTable {
        var rng = SplitMix64(seed: 21)
        func pick(_ k: UInt64) -> Int { Int(rng.next() % k) }
        var a: [Int64?] = [], b: [Double?] = [], lists: [[Int64]?] = [], scores: [Int64?] = []
        for _ in 0..<n {
            a.append(pick(5) == 0 ? nil : Int64(pick(3)))
            b.append(pick(4) == 0 ? nil : [0, 0.5, -2, .nan][pick(4)])
            lists.append(pick(6) == 0 ? nil : (0..<pick(5)).map { _ in Int64(pick(9)) })
            scores.append(pick(7) == 0 ? nil : Int64(pick(2_000_001)) - 1_000_000)
        }
        return try FeatureTable([("a", Column(int64s: a)), ("b", Column(doubles: b)), ("l", Column(int64Lists: lists)),
                                 ("s", Column(int64s: scores))])
    }

    func testNotNullListLengthAnyAndKeepMostFrequentEqualPlainLoops() throws {
        let t = try table()
        let a = t["a"], b = t["b"], l = t["l"]
        let out = try t.notNull(["a", "b"], outColumns: ["a_nn", "b_nn"]).listLength(["l"], outColumns: ["l_len"])
            .anyOf(["a", "b"], outColumn: "any").keepMostFrequent(["l"], outColumns: ["l_top"])
        XCTAssertEqual(out["a_nn"].int64Values, (0..<n).map { a.isNull($0) ? 0 : 1 })
        XCTAssertEqual(out["b_nn"].int64Values, (0..<n).map { b.isNull($0) ? 0 : 1 })
        XCTAssertEqual(out["l_len"].int64Values, (0..<n).map { r -> Int64 in
            if case .list(let v) = l[r] { return Int64(v.count) } else { return 0 }
        })
        XCTAssertEqual(out["any"].int64Values, (0..<n).map { r -> Int64 in
            var any = false
            if case .int(let x) = a[r], x != 0 { any = true }
            if case .double(let x) = b[r], x != 0, !x.isNaN { any = true }
            return any ? 1 : 0
        })
        XCTAssertEqual(out["l_top"].int64Values, (0..<n).map { r -> Int64 in
            guard case .list(let v) = l[r] else { return 0 }
            return v.compactMap { if case .int(let x) = $0, x > 0 { return x } else { return nil } }.min() ?? 0
        })
        XCTAssertEqual(out["l_top"].nullCount, 0)
    }

    func testMinMaxScaleEqualsPlainLoop() throws {
        let t = try table()
        let (out, stats) = try t.minMaxScale(["s", "a"], outMin: -1, outMax: 3)
        for name in ["s", "a"] {
            let c = t[name]
            let vals = (0..<n).compactMap { r -> Double? in if case .int(let x) = c[r] { return Double(x) } else { return nil } }
            let lo = vals.min()!, hi = vals.max()!
            XCTAssertEqual(stats.ranges[name], .init(min: lo, max: hi))
            let expected = (0..<n).map { r -> Double in
                let x = c.int64Values![r]
                return hi == lo ? 1 : (Double(x) - lo) / (hi - lo) * 4 + -1
            }
            XCTAssertEqual(out[name].doubleValues, expected, name)
            XCTAssertEqual(out[name].validity, c.validity)
        }
        // A double column with NaN: NaN is skipped by min and max, as in the one-pass loop.
        let (_, dstats) = try t.minMaxScale(["b"])
        XCTAssertEqual(dstats.ranges["b"], .init(min: -2, max: 0.5))
    }
}
