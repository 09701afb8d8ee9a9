@testable import HerdFeatures
import HerdTensor
import XCTest

/// `categorify` fits and encodes in one pass (recorded keys); it must equal fitting with
/// `genStringIndex` and then encoding with `encode`.
final class CategorifyOnePassTests: XCTestCase {
    func testOnePassEqualsFitThenEncode() throws {
        var rng = SplitMix64(seed: 12)
        let n = 5003  // several worker ranges, uneven
        func pick(_ k: UInt64) -> Int { Int(rng.next() % k) }
        var a: [String?] = [], b: [String?] = [], ints: [Int64?] = [], lists: [[String]?] = []
        var full: [String] = [], fullInts: [Int64] = []  // no nulls: ids read from the recorded keys
        for _ in 0..<n {
            full.append(pick(9) == 0 ? "" : "c\(pick(500))")
            fullInts.append(Int64(pick(70)) - 30)
            a.append(pick(10) == 0 ? nil : "u\(pick(300))")
            b.append(pick(7) == 0 ? nil : "u\(pick(400))")
            ints.append(pick(5) == 0 ? nil : Int64(pick(50)) - 10)
            lists.append(pick(4) == 0 ? nil : (0..<pick(4)).map { _ in "t\(pick(60))" })
        }
        let t = try FeatureTable([("a", Column(strings: a)), ("b", Column(strings: b)), ("n", Column(int64s: ints)),
                                  ("l", Column(stringLists: lists)), ("c", Column(type: .string, data: .string(StringData(full)))),
                                  ("m", Column(type: .int64, data: .int64(fullInts)))])
        for limit in [1, 3] {
            let groups = [["a", "b"], ["n"], ["l"], ["c", "m"]]
            let (out, indices) = try t.categorify(groups, freqLimit: limit)
            let expectedIndices = try t.genStringIndex(groups, freqLimit: limit)
            XCTAssertEqual(indices, expectedIndices)
            var expected = t
            for index in expectedIndices { expected = try expected.encode(index.columns, with: index) }
            XCTAssertEqual(out, expected, "freq_limit \(limit)")
            XCTAssertEqual(out["l"].type, .int64List)
            XCTAssertEqual(out["a"].nullCount, 0)
        }
    }
}
