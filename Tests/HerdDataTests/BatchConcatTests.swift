import HerdData
import HerdTensor
import XCTest

final class BatchConcatTests: XCTestCase {
    /// 2 features × 4 rows with multi-hot and empty bags.
    let kj = KeyedJagged(features: 2, batchSize: 4, offsets: [0, 1, 3, 3, 4, 6, 6, 7, 9], ids: [10, 11, 12, 13, 20, 21, 22, 23, 24])

    /// Concatenating slices gives back the whole: every bag, the dense rows, the labels.
    func testConcatenatedSlicesEqualTheWhole() {
        let b = Batch(dense: Tensor(shape: [4, 2], values: [0, 1, 2, 3, 4, 5, 6, 7]), sparse: kj, labels: [0, 1, 1, 0])
        for cuts in [[0..<4], [0..<1, 1..<4], [0..<2, 2..<2, 2..<3, 3..<4], [0..<1, 1..<2, 2..<3, 3..<4]] {
            let joined = Batch.concatenated(cuts.map { b.slice($0) })
            XCTAssertEqual(joined.count, 4)
            XCTAssertEqual(joined.dense.array, b.dense.array, "\(cuts)")
            XCTAssertEqual(joined.sparse, kj, "\(cuts)")
            XCTAssertEqual(joined.labels, b.labels)
        }
    }

    /// Rows of different batches follow each other in every feature, bag by bag; labels are kept
    /// only when every part has them.
    func testConcatenatedBagsFollowThePartsInOrder() {
        let other = KeyedJagged(features: 2, batchSize: 2, offsets: [0, 0, 2, 3, 3], ids: [30, 31, 40])
        let a = Batch(dense: Tensor(shape: [4, 1], values: [1, 2, 3, 4]), sparse: kj, labels: [])
        let c = Batch(dense: Tensor(shape: [2, 1], values: [5, 6]), sparse: other, labels: [])
        let j = Batch.concatenated([a, c, a])
        XCTAssertEqual(j.count, 10)
        XCTAssertEqual(j.dense.array, [1, 2, 3, 4, 5, 6, 1, 2, 3, 4])
        XCTAssertTrue(j.labels.isEmpty)
        let parts: [(KeyedJagged, Int)] = [(kj, 0), (other, 4), (kj, 6)]
        for f in 0..<2 {
            for (p, start) in parts {
                for r in 0..<p.batchSize {
                    XCTAssertEqual(Array(j.sparse.bag(feature: f, row: start + r)), Array(p.bag(feature: f, row: r)), "f\(f) row \(start + r)")
                }
            }
        }
        XCTAssertEqual(j.sparse.ids.count, 2 * kj.ids.count + other.ids.count)
        let labelled = Batch(dense: Tensor(shape: [2, 1], values: [5, 6]), sparse: other, labels: [1, 0])
        XCTAssertTrue(Batch.concatenated([a, labelled]).labels.isEmpty, "a part without labels drops them")
        XCTAssertFalse(Batch.canConcatenate([a, Batch(dense: Tensor(shape: [2, 2]), sparse: other, labels: [])]), "other dense width")
        XCTAssertFalse(Batch.canConcatenate([]))
    }
}
