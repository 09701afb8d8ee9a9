import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTestSupport
import XCTest

/// The per-item bias (`TwoTowerConfig.itemBiasFeature`): gradients, and the widened retrieval
/// embeddings whose inner product is τ · logit.
extension TwoTowerTests {
    /// `config(loss:)` with a bias keyed by the item id (feature 2), its values set to random
    /// numbers so that the checks do not run at the zero start.
    func biasedModel(loss: TwoTowerLoss, logQ: Bool = false) throws -> TwoTower {
        var c = config(loss: loss)
        c.itemBiasFeature = 2
        if logQ { c.logQColumn = 2 }
        let model = try TwoTower(config: c)
        let w = model.itemBias!.tables[0].weight
        XCTAssertEqual(w.shape, [7, 1])
        XCTAssertEqual(w.array, [Float](repeating: 0, count: 7), "the bias starts at zero")
        w.copy(from: randomTensor([7, 1], seed: 11))
        return model
    }

    func testItemBiasBCEBackwardMatchesFiniteDifferences() throws {
        let model = try biasedModel(loss: .bce)
        let b = batch(rows: 5, seed: 1)
        let c = randomTensor([5, 1], seed: 2).array
        _ = model.forward(b)
        model.zeroGrad()
        model.backward(Tensor(shape: [5, 1], values: c))
        let analytic = gradients(model)
        XCTAssertTrue(analytic.contains { $0.name == "item_bias.2" }, "the bias is a trained parameter")
        let m = GradientCheck().check(analytic) { probeLoss(model.forward(b), c) }
        XCTAssertEqual(m.map(\.description), [])
    }

    func testItemBiasLogQSoftmaxBackwardMatchesFiniteDifferences() throws {
        let model = try biasedModel(loss: .inBatchSoftmax, logQ: true)
        let b = withLogQ(batch(rows: 6, seed: 3), [-1.0, -2.5, -0.3, -4.0, -1.7, -0.9])
        model.zeroGrad()
        XCTAssertGreaterThan(model.customTrainStep(b, gradScale: 1)!.lossSum, 0)
        let analytic = gradients(model)
        let bias = analytic.first { $0.name == "item_bias.2" }!
        XCTAssertGreaterThan(bias.analytic.map(abs).max()!, 1e-3, "the softmax moves the bias")
        let m = GradientCheck().check(analytic) { model.customTrainStep(b, gradScale: 1)!.lossSum }
        XCTAssertEqual(m.map(\.description), [])
    }

    /// The softmax loss with a bias, by hand: logits ⟨u_i, v_j⟩/τ + b_j − log q_j.
    func testItemBiasSoftmaxLossMatchesAHandComputation() throws {
        let model = try biasedModel(loss: .inBatchSoftmax, logQ: true)
        let logQ: [Float] = [-1.0, -2.5, -0.3, -4.0, -1.7, -0.9]
        let b = withLogQ(batch(rows: 6, seed: 3), logQ)
        let u = model.userEmbeddings(b).array, v = model.itemEmbeddings(b).array, e = 4, tau = Double(model.config.temperature)
        let w = model.itemBias!.tables[0].weight
        let itemID = (0..<6).map { Int(b.sparse.ids[Int(b.sparse.offsets[2 * 6 + $0])]) }
        let pos = (0..<6).filter { b.labels[$0] == 1 }
        var expected = 0.0
        for i in pos {
            let l = pos.map { j in
                Double((0..<e).map { u[i * e + $0] * v[j * e + $0] }.reduce(0, +)) / tau + Double(w[itemID[j]]) - Double(logQ[j])
            }
            expected += log(l.map { exp($0) }.reduce(0, +)) - l[pos.firstIndex(of: i)!]
        }
        XCTAssertEqual(model.customTrainStep(b, gradScale: 1)!.lossSum, expected, accuracy: 1e-4)
    }

    /// Users `[u, 1]`, items `[v, τ·b]`: the inner product of the embeddings `herd predict` writes
    /// is τ times the model's logit, so an ANN ranks items as the model does, bias included.
    func testItemBiasWidensTheRetrievalEmbeddings() throws {
        let model = try biasedModel(loss: .bce)
        let n = 6
        let full = batch(rows: n, seed: 5)
        let logits = model.forward(full).array
        XCTAssertEqual(model.retrievalDimension, 5)
        var side: [TowerSide: Tensor] = [:]
        for s in TowerSide.allCases {
            let (sparse, dense) = model.inputs(of: s)
            let d = Tensor(shape: [n, dense.count])
            for r in 0..<n { for (k, j) in dense.enumerated() { d[r * dense.count + k] = full.dense[r * 2 + j] } }
            side[s] = model.embed(s, Batch(dense: d, sparse: full.sparse.select(features: sparse), labels: []))
            XCTAssertEqual(side[s]!.shape, [n, 5])
        }
        let w = model.itemBias!.tables[0].weight
        for r in 0..<n {
            XCTAssertEqual(side[.user]![r * 5 + 4], 1)
            let id = Int(full.sparse.ids[Int(full.sparse.offsets[2 * n + r])])
            XCTAssertEqual(side[.item]![r * 5 + 4], model.config.temperature * w[id], accuracy: 1e-6)
            let dot = Kernels.dot(side[.user]!.data + r * 5, side[.item]!.data + r * 5, count: 5)
            XCTAssertEqual(dot, model.config.temperature * logits[r], accuracy: 1e-5)
        }
        // Without a bias the embeddings stay the towers' unit vectors.
        XCTAssertEqual(try TwoTower(config: config(loss: .bce)).retrievalDimension, 4)
    }

    func testItemBiasFeatureMustBeAnItemInputAndRoundTrips() throws {
        var c = config(loss: .inBatchSoftmax)
        c.itemBiasFeature = 0  // the user id
        XCTAssertThrowsError(try TwoTower(config: c)) { XCTAssertTrue("\($0)".contains("item tower's sparse inputs"), "\($0)") }
        c.itemBiasFeature = 3
        XCTAssertEqual(try JSONDecoder().decode(TwoTowerConfig.self, from: try JSONEncoder().encode(c)), c)
        let model = try TwoTower(config: c)
        XCTAssertTrue(model.namedWeights.contains { $0.0 == "item_bias.3.weight" })
        // The towers start from the same weights with or without a bias.
        let plain = try TwoTower(config: config(loss: .inBatchSoftmax))
        XCTAssertEqual(model.userTower.mlp.parameters.map(\.value.array), plain.userTower.mlp.parameters.map(\.value.array))
        XCTAssertEqual(model.itemTower.mlp.parameters.map(\.value.array), plain.itemTower.mlp.parameters.map(\.value.array))
    }
}
