import HerdData
import HerdTensor
import XCTest

final class BatchGatherTests: XCTestCase {
    /// `gather(rows:)` against a plain loop over `bag(feature:row:)` and the dense rows,
    /// with repeats, a reordering and empty bags.
    func testGatherMatchesAPlainLoop() {
        let b = 5, features = 3
        var rng = SplitMix64(seed: 11)
        var ids: [Int32] = [], offsets: [Int32] = [0]
        for f in 0..<features {
            for _ in 0..<b {
                for _ in 0..<(f == 1 ? Int(rng.next() % 3) : 1) { ids.append(Int32(rng.next() % 50)) }
                offsets.append(Int32(ids.count))
            }
        }
        let dense = Tensor(shape: [b, 2], values: (0..<(2 * b)).map { Float($0) * 0.5 })
        let batch = Batch(dense: dense, sparse: KeyedJagged(features: features, batchSize: b, offsets: offsets, ids: ids),
                          labels: [0, 1, 1, 0, 1])
        let rows = [3, 0, 3, 4, 1, 1]
        let g = batch.gather(rows: rows)
        XCTAssertEqual(g.count, rows.count)
        XCTAssertEqual(g.labels, rows.map { batch.labels[$0] })
        for (k, r) in rows.enumerated() {
            for f in 0..<features { XCTAssertEqual(Array(g.sparse.bag(feature: f, row: k)), Array(batch.sparse.bag(feature: f, row: r)), "f \(f) row \(k)") }
            for c in 0..<2 { XCTAssertEqual(g.dense[k * 2 + c], batch.dense[r * 2 + c]) }
        }
        XCTAssertEqual(batch.gather(rows: Array(0..<b)).sparse, batch.sparse)
        XCTAssertEqual(batch.gather(rows: []).count, 0)
    }
}
