@testable import HerdFeatures
import HerdTensor
import XCTest

/// `mapEncode` through `SmallKeyMap` (few keys of ≤ 16 bytes) against a plain dictionary loop:
/// empty strings, 15/16/17-byte values, prefixes of keys, values at the very end of the bytes
/// buffer, nulls, and a table split across workers.
final class MapEncodeSmallKeysTests: XCTestCase {
    func testSmallKeysEqualDictionaryLoop() throws {
        let mapping: [String: Int64] = ["": 4, "GIF": 1, "Photo_Video": 2, "exactly16bytes!!": 3, "é": 5, "false": 0, "true": 1,
                                        "\u{0}": 6, "fifteen-bytes!!": 7]
        XCTAssertNotNil(SmallKeyMap(mapping))
        let pool = Array(mapping.keys) + ["GI", "GIFF", "Photo_Vide", "exactly16bytes!?", "exactly16bytes!!x", "Photo", "\u{0}\u{0}", "tru"]
        var rng = SplitMix64(seed: 8)
        let n = 3 * FeatureTable.rowParallelMinimum + 5
        for last in pool {  // each pool value once at the end of the bytes buffer
            var values: [String?] = (0..<n - 1).map { _ in rng.next() % 9 == 0 ? nil : pool[Int(rng.next() % UInt64(pool.count))] }
            values.append(last)
            let t = try FeatureTable([("m", Column(strings: values))])
            for fallback in [0, 9] as [Int64] {
                let got = try t.mapEncode(["m"], mapping: mapping, defaultID: fallback)["m"].int64Values!
                let expected = values.map { v in v.flatMap { mapping[$0] } ?? fallback }
                XCTAssertEqual(got, expected, "last '\(last)', default \(fallback)")
                if got != expected { return }
            }
        }
    }

    func testLongOrManyKeysTakeTheGeneralPath() throws {
        XCTAssertNil(SmallKeyMap(["seventeen-bytes!!": 1]))
        XCTAssertNil(SmallKeyMap(Dictionary(uniqueKeysWithValues: (0...SmallKeyMap.maxKeys).map { ("k\($0)", Int64($0)) })))
        let t = try FeatureTable([("m", Column(strings: ["seventeen-bytes!!", "x", nil]))])
        XCTAssertEqual(try t.mapEncode(["m"], mapping: ["seventeen-bytes!!": 5], defaultID: 2)["m"].int64Values, [5, 2, 2])
    }
}
