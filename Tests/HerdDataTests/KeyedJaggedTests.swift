import HerdData
import HerdTensor
import XCTest

final class KeyedJaggedTests: XCTestCase {
    /// 2 features × 4 rows with multi-hot and empty bags.
    let kj = KeyedJagged(features: 2, batchSize: 4, offsets: [0, 1, 3, 3, 4, 6, 6, 7, 9], ids: [10, 11, 12, 13, 20, 21, 22, 23, 24])

    func testSliceMatchesBagByBagCopy() {
        for range in [0..<4, 1..<3, 2..<2, 3..<4, 0..<1] {
            let s = kj.slice(range)
            XCTAssertEqual(s.batchSize, range.count)
            var expectedIds: [Int32] = [], expectedOffsets: [Int32] = [0]
            for f in 0..<2 {
                for (i, r) in range.enumerated() {
                    XCTAssertEqual(Array(s.bag(feature: f, row: i)), Array(kj.bag(feature: f, row: r)), "\(range) f\(f) r\(r)")
                    expectedIds += kj.bag(feature: f, row: r)
                    expectedOffsets.append(Int32(expectedIds.count))
                }
            }
            XCTAssertEqual(s.ids, expectedIds)
            XCTAssertEqual(s.offsets, expectedOffsets)
        }
    }

    func testBatchSliceCopiesDenseAndLabels() {
        let b = Batch(dense: Tensor(shape: [4, 2], values: [0, 1, 2, 3, 4, 5, 6, 7]), sparse: kj, labels: [0, 1, 1, 0])
        let s = b.slice(1..<3)
        XCTAssertEqual(s.dense.array, [2, 3, 4, 5])
        XCTAssertEqual(s.labels, [1, 1])
        XCTAssertEqual(s.sparse, kj.slice(1..<3))
    }
}

final class KeyedJaggedSelectTests: XCTestCase {
    func testSelectCopiesChosenFeaturesInOrder() {
        let kj = KeyedJagged(features: 3, batchSize: 2, offsets: [0, 1, 3, 3, 4, 5, 7], ids: [1, 2, 3, 4, 5, 6, 7])
        let s = kj.select(features: [2, 0])
        XCTAssertEqual(s.features, 2)
        XCTAssertEqual(Array(s.bag(feature: 0, row: 0)), [5])
        XCTAssertEqual(Array(s.bag(feature: 0, row: 1)), [6, 7])
        XCTAssertEqual(Array(s.bag(feature: 1, row: 1)), [2, 3])
        XCTAssertEqual(s.ids, [5, 6, 7, 1, 2, 3])
        XCTAssertEqual(kj.select(features: [0, 1, 2]), kj)
    }
}
