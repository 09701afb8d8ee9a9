import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTestSupport
import XCTest

/// Towers run once per distinct input row (`Tower.deduplicatesRows`): same outputs and gradients
/// as running every row.
extension TwoTowerTests {
    /// A batch whose rows repeat users (features 0, 1, dense 0) and items (2, 3, dense 1)
    /// independently, including a repeated multi-hot bag.
    func repeatingBatch() -> Batch {
        let base = batch(rows: 4, seed: 7)
        let users = [0, 1, 0, 2, 0, 1, 3, 2], items = [1, 1, 2, 3, 0, 1, 2, 2]
        let u = base.gather(rows: users), v = base.gather(rows: items)
        var ids: [Int32] = [], offsets: [Int32] = [0]
        for f in 0..<4 {
            let src = f < 2 ? u : v
            for r in 0..<users.count {
                ids.append(contentsOf: src.sparse.bag(feature: f, row: r))
                offsets.append(Int32(ids.count))
            }
        }
        let d = Tensor(shape: [users.count, 2])
        for r in 0..<users.count {
            d[r * 2] = u.dense[r * 2]
            d[r * 2 + 1] = v.dense[r * 2 + 1]
        }
        return Batch(dense: d, sparse: KeyedJagged(features: 4, batchSize: users.count, offsets: offsets, ids: ids),
                     labels: (0..<users.count).map { Float($0 % 3 == 0 ? 0 : 1) })
    }

    func testTowersRunOncePerDistinctRowWithTheSameOutputsAndGradients() throws {
        for loss in [TwoTowerLoss.bce, .inBatchSoftmax] {
            let b = repeatingBatch()
            let dedup = try TwoTower(config: config(loss: loss)), plain = try TwoTower(config: config(loss: loss))
            plain.userTower.deduplicatesRows = false
            plain.itemTower.deduplicatesRows = false
            XCTAssertEqual(dedup.userTower.distinctRows(b)?.distinct, [0, 1, 3, 6])
            XCTAssertEqual(dedup.itemTower.distinctRows(b)?.distinct, [0, 2, 3, 4])
            XCTAssertNil(dedup.userTower.distinctRows(batch(rows: 3, seed: 1)), "no repeats: nil")
            let c = randomTensor([b.count, 1], seed: 5).array
            for m in [dedup, plain] {
                m.zeroGrad()
                if loss == .bce {
                    _ = m.forward(b)
                    m.backward(Tensor(shape: [b.count, 1], values: c))
                } else {
                    _ = m.customTrainStep(b, gradScale: 1)
                }
            }
            XCTAssertLessThan(maxAbsDifference(dedup.forward(b).array, plain.forward(b).array), 1e-6)
            for (g, p) in zip(gradients(dedup), gradients(plain)) {
                XCTAssertEqual(g.name, p.name)
                XCTAssertLessThan(maxAbsDifference(g.analytic, p.analytic), 1e-5, "\(loss) \(g.name)")
            }
            // And against finite differences on the batch with repeats.
            dedup.zeroGrad()
            if loss == .bce {
                _ = dedup.forward(b)
                dedup.backward(Tensor(shape: [b.count, 1], values: c))
                let m = GradientCheck().check(gradients(dedup)) { probeLoss(dedup.forward(b), c) }
                XCTAssertEqual(m.map(\.description), [])
            } else {
                _ = dedup.customTrainStep(b, gradScale: 1)
                let m = GradientCheck().check(gradients(dedup)) { dedup.customTrainStep(b, gradScale: 1)!.lossSum }
                XCTAssertEqual(m.map(\.description), [])
            }
        }
    }

    /// Rows that differ only in a dense value or in a multi-hot bag's length stay apart.
    func testDistinctRowsComparesEveryInput() throws {
        let model = try TwoTower(config: config(loss: .bce))
        let b = batch(rows: 1, seed: 3).gather(rows: [0, 0, 0, 0])
        let d = b.dense.clone()
        d[1 * 2 + 1] += 1  // row 1: item dense differs
        var ids: [Int32] = [], offsets: [Int32] = [0]
        for f in 0..<4 {
            for r in 0..<4 {
                var bag = Array(b.sparse.bag(feature: f, row: r))
                if f == 3 && r == 2 { bag.append(bag[0]) }  // row 2: one more tag
                ids.append(contentsOf: bag)
                offsets.append(Int32(ids.count))
            }
        }
        let changed = Batch(dense: d, sparse: KeyedJagged(features: 4, batchSize: 4, offsets: offsets, ids: ids), labels: [])
        XCTAssertEqual(model.itemTower.distinctRows(changed)?.map, [0, 1, 2, 0])
        XCTAssertEqual(model.userTower.distinctRows(changed)?.map, [0, 0, 0, 0])
    }
}
