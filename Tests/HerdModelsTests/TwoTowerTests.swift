import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTestSupport
import XCTest

final class TwoTowerTests: XCTestCase {
    /// Features: 0 user id (6), 1 user segment as indicator (3), 2 item id (7), 3 item tags multi-hot (5).
    /// Dense: 0 user numeric, 1 item numeric.
    func config(loss: TwoTowerLoss) -> TwoTowerConfig {
        var c = TwoTowerConfig(
            tableSizes: [6, 3, 7, 5],
            user: TowerConfig(sparseFeatures: [0], denseFeatures: [0], indicators: [1], mlp: [8, 4]),
            item: TowerConfig(sparseFeatures: [2, 3], denseFeatures: [1], mlp: [8, 4]))
        c.embeddingDim = 3
        c.loss = loss
        c.temperature = 0.5
        c.seed = 4
        return c
    }

    func batch(rows b: Int, seed: UInt64) -> Batch {
        var rng = SplitMix64(seed: seed)
        var ids: [Int32] = [], offsets: [Int32] = [0]
        for (f, n) in [6, 3, 7, 5].enumerated() {
            for _ in 0..<b {
                for _ in 0..<(f == 3 ? Int(rng.next() % 3) + 1 : 1) { ids.append(Int32(rng.next() % UInt64(n))) }
                offsets.append(Int32(ids.count))
            }
        }
        let labels = (0..<b).map { Float($0 % 3 == 0 ? 0 : 1) }
        return Batch(dense: randomTensor([b, 2], seed: seed), sparse: KeyedJagged(features: 4, batchSize: b, offsets: offsets, ids: ids), labels: labels)
    }

    func gradients(_ model: TwoTower) -> [(name: String, value: Tensor, analytic: [Float])] {
        var out: [(name: String, value: Tensor, analytic: [Float])] = []
        for g in model.groups {
            for p in g.parameters { out.append((p.name, p.value, p.grad.array)) }
            for c in g.collections { for (t, gr) in zip(c.tables, c.gradients) { out.append((t.name, t.weight, densify(gr, rows: t.rows))) } }
        }
        return out
    }

    func testBCEBackwardMatchesFiniteDifferences() throws {
        let model = try TwoTower(config: config(loss: .bce))
        let b = batch(rows: 5, seed: 1)
        let c = randomTensor([5, 1], seed: 2).array
        _ = model.forward(b)
        model.zeroGrad()
        model.backward(Tensor(shape: [5, 1], values: c))
        let m = GradientCheck().check(gradients(model)) { probeLoss(model.forward(b), c) }
        XCTAssertEqual(m.map(\.description), [])
        XCTAssertEqual(model.userEmbeddings(b).columns, 4)
        let u = model.userEmbeddings(b)
        XCTAssertEqual(Kernels.dot(u.data, u.data, count: 4), 1, accuracy: 1e-5, "unit vectors")
    }

    /// A tower fed only its own features (a user or item table) gives the same unit vectors as
    /// inside the full forward pass.
    func testTowerAloneMatchesTheFullForward() throws {
        var c = config(loss: .bce)
        // Interleave the user's features with the item's so that the remapping is exercised.
        c.tableSizes = [6, 7, 3, 5]
        c.user = TowerConfig(sparseFeatures: [0], denseFeatures: [1], indicators: [2], mlp: [8, 4])
        c.item = TowerConfig(sparseFeatures: [1, 3], denseFeatures: [0], mlp: [8, 4])
        let model = try TwoTower(config: c)
        var rng = SplitMix64(seed: 9)
        let n = 7
        var ids: [Int32] = [], offsets: [Int32] = [0]
        for size in c.tableSizes {
            for _ in 0..<n {
                for _ in 0..<(size == 5 ? Int(rng.next() % 3) : 1) { ids.append(Int32(rng.next() % UInt64(size))) }
                offsets.append(Int32(ids.count))
            }
        }
        let full = Batch(dense: randomTensor([n, 2], seed: 3), sparse: KeyedJagged(features: 4, batchSize: n, offsets: offsets, ids: ids), labels: [])
        let logits = model.forward(full).array
        let inside = [TowerSide.user: model.userEmbeddings(full).array, .item: model.itemEmbeddings(full).array]
        XCTAssertEqual(model.inputs(of: .user).sparse, [0, 2])
        XCTAssertEqual(model.inputs(of: .item).sparse, [1, 3])
        var alone: [TowerSide: Tensor] = [:]
        for side in TowerSide.allCases {
            let (sparse, dense) = model.inputs(of: side)
            let d = Tensor(shape: [n, dense.count])
            for r in 0..<n { for (k, j) in dense.enumerated() { d[r * dense.count + k] = full.dense[r * 2 + j] } }
            let z = model.embed(side, Batch(dense: d, sparse: full.sparse.select(features: sparse), labels: []))
            XCTAssertEqual(z.shape, [n, 4])
            for (a, b) in zip(z.array, inside[side]!) { XCTAssertEqual(a, b, accuracy: 1e-6, "\(side)") }
            for r in 0..<n { XCTAssertEqual(Kernels.dot(z.data + r * 4, z.data + r * 4, count: 4), 1, accuracy: 1e-5) }
            alone[side] = z
        }
        // The full pass's logits are the alone embeddings' dot products over the temperature.
        for r in 0..<n {
            XCTAssertEqual(logits[r], Kernels.dot(alone[.user]!.data + r * 4, alone[.item]!.data + r * 4, count: 4) / c.temperature, accuracy: 1e-5)
        }
    }

    func testInBatchSoftmaxBackwardMatchesFiniteDifferences() throws {
        let model = try TwoTower(config: config(loss: .inBatchSoftmax))
        let b = batch(rows: 6, seed: 3)
        model.zeroGrad()
        let first = model.customTrainStep(b, gradScale: 1)!
        XCTAssertGreaterThan(first.lossSum, 0)
        let analytic = gradients(model)
        let m = GradientCheck().check(analytic) { model.customTrainStep(b, gradScale: 1)!.lossSum }
        XCTAssertEqual(m.map(\.description), [])
    }

    /// `batch` with a third dense column of log q values (column 2), not read by the towers.
    func withLogQ(_ b: Batch, _ logQ: [Float]) -> Batch {
        let d = Tensor(shape: [b.count, 3])
        for r in 0..<b.count {
            d[r * 3] = b.dense[r * 2]
            d[r * 3 + 1] = b.dense[r * 2 + 1]
            d[r * 3 + 2] = logQ[r]
        }
        return Batch(dense: d, sparse: b.sparse, labels: b.labels)
    }

    func testLogQCorrectedSoftmaxBackwardMatchesFiniteDifferences() throws {
        var c = config(loss: .inBatchSoftmax)
        c.logQColumn = 2
        let model = try TwoTower(config: c)
        let b = withLogQ(batch(rows: 6, seed: 3), [-1.0, -2.5, -0.3, -4.0, -1.7, -0.9])
        model.zeroGrad()
        XCTAssertGreaterThan(model.customTrainStep(b, gradScale: 1)!.lossSum, 0)
        let analytic = gradients(model)
        let m = GradientCheck().check(analytic) { model.customTrainStep(b, gradScale: 1)!.lossSum }
        XCTAssertEqual(m.map(\.description), [])
    }

    func testLogQCorrectedLossMatchesAHandComputation() throws {
        var c = config(loss: .inBatchSoftmax)
        c.logQColumn = 2
        let model = try TwoTower(config: c)
        let plain = try TwoTower(config: config(loss: .inBatchSoftmax))  // same seed, same weights
        let raw = batch(rows: 6, seed: 3)
        let logQ: [Float] = [-1.0, -2.5, -0.3, -4.0, -1.7, -0.9]
        let b = withLogQ(raw, logQ)
        let u = model.userEmbeddings(b).array, v = model.itemEmbeddings(b).array, e = 4
        let pos = (0..<6).filter { b.labels[$0] == 1 }
        var expected = 0.0
        for i in pos {
            let l = pos.map { j in Double((0..<e).map { u[i * e + $0] * v[j * e + $0] }.reduce(0, +)) / Double(c.temperature) - Double(logQ[j]) }
            let own = l[pos.firstIndex(of: i)!]
            expected += log(l.map { exp($0) }.reduce(0, +)) - own
        }
        XCTAssertEqual(model.customTrainStep(b, gradScale: 1)!.lossSum, expected, accuracy: 1e-4)
        // A constant log q shifts every logit of a row alike: the loss is that of no correction.
        let same = model.customTrainStep(withLogQ(raw, [Float](repeating: -3, count: 6)), gradScale: 1)!.lossSum
        XCTAssertEqual(same, plain.customTrainStep(raw, gradScale: 1)!.lossSum, accuracy: 1e-4)
        XCTAssertGreaterThan(abs(expected - same), 1e-3)
    }

    func testLogQColumnNeedsTheSoftmaxLossAndAColumnNoTowerReads() {
        var c = config(loss: .bce)
        c.logQColumn = 2
        XCTAssertThrowsError(try TwoTower(config: c)) { XCTAssertTrue("\($0)".contains("in_batch_softmax")) }
        c.loss = .inBatchSoftmax
        c.logQColumn = 1
        XCTAssertThrowsError(try TwoTower(config: c)) { XCTAssertTrue("\($0)".contains("no tower reads")) }
    }

    func testBCEModelHasNoCustomStep() throws {
        XCTAssertNil(try TwoTower(config: config(loss: .bce)).customTrainStep(batch(rows: 3, seed: 1), gradScale: 1))
    }

    func testTowersMustEndInTheSameSize() {
        var c = config(loss: .bce)
        c.item.mlp = [8, 5]
        XCTAssertThrowsError(try TwoTower(config: c)) { XCTAssertTrue("\($0)".contains("same size")) }
    }

    /// `precision: .bf16`: the towers' wide-enough layers run in BF16 (a first layer with
    /// indicator columns stays FP32), logits stay close to the FP32 twin's, the config round-trips
    /// and configs without the field decode as FP32.
    func testBF16TowersAndConfig() throws {
        var c = config(loss: .bce)
        c.user.mlp = [16, 16, 8]
        c.item.mlp = [16, 16, 8]
        c.bf16MinWidth = 4
        var c16 = c
        c16.precision = .bf16
        let m32 = try TwoTower(config: c), m16 = try TwoTower(config: c16)
        XCTAssertEqual(m16.precision, .bf16)
        XCTAssertEqual(m16.userTower.mlp.layers.map(\.precision), [.fp32, .bf16, .bf16], "first layer has indicator columns")
        XCTAssertEqual(m16.itemTower.mlp.layers.map(\.precision), [.bf16, .bf16, .bf16])
        let b = batch(rows: 7, seed: 3)
        let l32 = m32.forward(b).array, l16 = m16.forward(b).array
        XCTAssertNotEqual(l32, l16)
        XCTAssertLessThan(maxAbsDifference(l32, l16), 0.05 / c.temperature)
        let json = try JSONEncoder().encode(c16)
        XCTAssertEqual(try JSONDecoder().decode(TwoTowerConfig.self, from: json), c16)
        var dict = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(c)) as! [String: Any]
        dict.removeValue(forKey: "precision")
        dict.removeValue(forKey: "bf16MinWidth")
        let old = try JSONDecoder().decode(TwoTowerConfig.self, from: try JSONSerialization.data(withJSONObject: dict))
        XCTAssertEqual(old.precision, .fp32)
        XCTAssertEqual(old.bf16MinWidth, 64)
        XCTAssertEqual(old.user, c.user)
    }
}
