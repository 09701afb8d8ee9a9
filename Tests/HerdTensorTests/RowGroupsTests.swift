import XCTest
@testable import HerdTensor

/// `RowGroups`: the hand-worked case of its doc comment, hash collisions between unequal rows
/// (never merged), every row distinct (nil), and a large random case against a quadratic search.
final class RowGroupsTests: XCTestCase {
    private func groups(_ values: [Int], hash: ((Int) -> UInt64)? = nil) -> RowGroups? {
        RowGroups.of(count: values.count, hash: hash ?? { UInt64(values[$0]) &* 0x9E37_79B9_7F4A_7C15 }, equal: { values[$0] == values[$1] })
    }

    func testDocCommentCase() {
        // a b a c b
        let g = groups([10, 11, 10, 12, 11])
        XCTAssertEqual(g?.distinct, [0, 1, 3])
        XCTAssertEqual(g?.map, [0, 1, 0, 2, 1])
    }

    func testCollidingUnequalRowsStayApart() {
        // Every row hashes alike: only `equal` may merge.
        let values = [1, 2, 1, 3, 2, 3, 4]
        let g = groups(values, hash: { _ in 42 })
        XCTAssertEqual(g?.distinct, [0, 1, 3, 6])
        XCTAssertEqual(g?.map, [0, 1, 0, 2, 1, 2, 3])
    }

    func testAllDistinctIsNilAndSmallCounts() {
        XCTAssertNil(groups([5, 6, 7, 8]))
        XCTAssertNil(groups([5]))
        XCTAssertNil(groups([]))
        XCTAssertEqual(groups([5, 5])?.map, [0, 0])
    }

    func testRandomAgainstQuadraticSearch() {
        var rng = SystemRandomNumberGenerator()
        for count in [2, 3, 17, 64, 500, 3000] {
            // Few distinct values and a weak hash (value mod 7) so probes chain and collide.
            let values = (0..<count).map { _ in Int.random(in: 0..<max(2, count / 3), using: &rng) }
            let g = groups(values, hash: { UInt64(values[$0] % 7) })
            var distinct: [Int] = [], map: [Int] = []
            for (s, v) in values.enumerated() {
                if let k = distinct.firstIndex(where: { values[$0] == v }) { map.append(k) } else { map.append(distinct.count); distinct.append(s) }
            }
            if distinct.count == count { XCTAssertNil(g); continue }
            XCTAssertEqual(g?.distinct, distinct, "count \(count)")
            XCTAssertEqual(g?.map, map, "count \(count)")
        }
    }
}
