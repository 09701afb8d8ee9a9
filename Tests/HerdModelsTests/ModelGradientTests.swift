import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTestSupport
import XCTest

/// Whole-model backward passes against finite differences: every part (MLPs, interaction,
/// embedding bags, wide part with crosses) at once.
final class ModelGradientTests: XCTestCase {
    func smallBatch(rows b: Int, tableSizes: [Int], seed: UInt64) -> Batch {
        var rng = SplitMix64(seed: seed)
        var ids: [Int32] = []
        for n in tableSizes { for _ in 0..<b { ids.append(Int32(rng.next() % UInt64(n))) } }
        return Batch(dense: randomTensor([b, 3], seed: seed), sparse: KeyedJagged(oneHot: ids, features: tableSizes.count, batchSize: b), labels: [])
    }

    func check(_ model: any RankingModel, _ batch: Batch, buffers: Int = 0, file: StaticString = #filePath, line: UInt = #line) {
        let c = randomTensor([batch.count, 1], seed: 42).array
        model.setMode(.training(step: 1, shard: 0))
        _ = model.forward(batch)
        model.zeroGrad()
        model.backward(Tensor(shape: [batch.count, 1], values: c))
        var tensors: [(name: String, value: Tensor, analytic: [Float])] = []
        for g in model.groups {
            for p in g.parameters { tensors.append((p.name, p.value, p.grad.array)) }
            for coll in g.collections {
                for (t, grad) in zip(coll.tables, coll.gradients) { tensors.append((t.name, t.weight, densify(grad, rows: t.rows))) }
            }
        }
        XCTAssertEqual(tensors.count + buffers, model.namedWeights.count, "every weight has a gradient", file: file, line: line)
        var gc = GradientCheck()
        gc.maxElementsPerTensor = 24
        let m = gc.check(tensors) { probeLoss(model.forward(batch), c) }
        XCTAssertEqual(m.map(\.description), [], file: file, line: line)
    }

    func testDLRMDotBackward() throws {
        var cfg = DLRMConfig(tableSizes: [5, 7, 3])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 4
        cfg.bottomMLP = [8, 4]
        cfg.topMLP = [6, 1]
        cfg.seed = 1
        let model = try DLRM(config: cfg)
        // NOTE: DLRM's embedding init is U(±√(1/N)); scale up so interaction gradients are not tiny.
        for t in model.sparseArch.tables { for i in 0..<t.weight.count { t.weight[i] *= 2 } }
        check(model, smallBatch(rows: 4, tableSizes: cfg.tableSizes, seed: 3))
    }

    func testDLRMCatBackward() throws {
        var cfg = DLRMConfig(tableSizes: [4, 6])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 2
        cfg.bottomMLP = [5, 2]
        cfg.topMLP = [4, 1]
        cfg.interaction = .cat
        check(try DLRM(config: cfg), smallBatch(rows: 3, tableSizes: cfg.tableSizes, seed: 4))
    }

    func testWideAndDeepBackwardWithCrosses() throws {
        var cfg = WideAndDeepConfig(tableSizes: [5, 4, 6])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 3
        cfg.deepMLP = [8, 4, 1]
        cfg.crosses = [[0, 1], [1, 2]]
        cfg.crossBuckets = 7
        let model = try WideAndDeep(config: cfg)
        for t in model.wideArch!.tables { for i in 0..<t.weight.count { t.weight[i] = Float(i % 5) * 0.1 - 0.2 } }
        check(model, smallBatch(rows: 5, tableSizes: cfg.tableSizes, seed: 5))
    }

    func testFriesianStyleWideAndDeepBackward() throws {
        // 4 features: 0 embedded (dim 3), 1 indicator only, 2 embedded (dim 2) and multi-hot, 3 wide only.
        var cfg = WideAndDeepConfig(tableSizes: [5, 3, 6, 2])
        cfg.denseFeatures = 2
        cfg.embeddingDims = [3, 0, 2, 0]
        cfg.indicators = [1]
        cfg.wideFeatures = [3]
        cfg.crosses = [[1, 3]]
        cfg.crossBuckets = 5
        cfg.deepMLP = [6, 4, 1]
        cfg.batchNorm = true
        cfg.dropout = 0.2
        cfg.pooling = .mean
        let model = try WideAndDeep(config: cfg)
        for t in model.wideArch!.tables { for i in 0..<t.weight.count { t.weight[i] = Float(i % 3) * 0.2 - 0.1 } }
        XCTAssertEqual(model.deepArch.inputs, 3 + 2 + 3 + 2)
        var rng = SplitMix64(seed: 8)
        let b = 6
        var ids: [Int32] = [], offsets: [Int32] = [0]
        for (f, n) in cfg.tableSizes.enumerated() {
            for _ in 0..<b {
                let len = f == 2 ? Int(rng.next() % 3) + 1 : 1
                for _ in 0..<len { ids.append(Int32(rng.next() % UInt64(n))) }
                offsets.append(Int32(ids.count))
            }
        }
        let batch = Batch(dense: randomTensor([b, 2], seed: 9), sparse: KeyedJagged(features: 4, batchSize: b, offsets: offsets, ids: ids), labels: [])
        check(model, batch, buffers: model.deepArch.buffers.count)
    }

    func testOlderWideAndDeepConfigJSONStillDecodes() throws {
        let json = #"{"tableSizes":[4,5],"denseFeatures":13,"embeddingDim":16,"deepMLP":[8,1],"crosses":[],"crossBuckets":10,"embeddingSpec":"dense","seed":3}"#
        let c = try JSONDecoder().decode(WideAndDeepConfig.self, from: Data(json.utf8))
        XCTAssertEqual(c.tableSizes, [4, 5])
        XCTAssertEqual(c.deepMLP, [8, 1])
        XCTAssertFalse(c.batchNorm)
        XCTAssertEqual(c.dims, [16, 16])
        let again = try JSONDecoder().decode(WideAndDeepConfig.self, from: try JSONEncoder().encode(c))
        XCTAssertEqual(again, c)
    }

    func testDLRMDefaultConfigFLOPs() throws {
        let model = try DLRM(config: DLRMConfig(tableSizes: Array(repeating: 10, count: 26)))
        // bottom 13-512-256-64-16, 351 dot pairs × 16, top 367-512-256-1
        let bottom = 13 * 512 + 512 * 256 + 256 * 64 + 64 * 16
        let top = 367 * 512 + 512 * 256 + 256
        XCTAssertEqual(model.interactionArch.outputs, 367)
        XCTAssertEqual(model.forwardMACsPerSample, bottom + 351 * 16 + top)
    }

    func testInvalidConfigsAreRejectedWithReasons() {
        var cfg = DLRMConfig(tableSizes: [3])
        cfg.bottomMLP = [8, 5]
        XCTAssertThrowsError(try DLRM(config: cfg)) { XCTAssertTrue("\($0)".contains("embedding dimension")) }
        var w = WideAndDeepConfig(tableSizes: [3, 3])
        w.crosses = [[0, 5]]
        XCTAssertThrowsError(try WideAndDeep(config: w)) { XCTAssertTrue("\($0)".contains("cross")) }
    }

    func testReplicaComputesTheSameLogits() throws {
        var cfg = DLRMConfig(tableSizes: [5, 7])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 4
        cfg.bottomMLP = [4]
        cfg.topMLP = [1]
        let m = try DLRM(config: cfg)
        let batch = smallBatch(rows: 6, tableSizes: cfg.tableSizes, seed: 9)
        XCTAssertEqual(m.forward(batch).array, m.replica().forward(batch).array)
    }
}

/// DeepFM and DCN-v2 with the same whole-model gradient check.
extension ModelGradientTests {
    func testDeepFMBackward() throws {
        var cfg = DeepFMConfig(tableSizes: [5, 4, 6])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 3
        cfg.deepMLP = [6, 1]
        let model = try DeepFM(config: cfg)
        for t in model.firstOrder.tables { for i in 0..<t.weight.count { t.weight[i] = Float(i % 4) * 0.1 - 0.15 } }
        for t in model.sparseArch.tables { for i in 0..<t.weight.count { t.weight[i] *= 3 } }
        check(model, smallBatch(rows: 4, tableSizes: cfg.tableSizes, seed: 6))
    }

    func testFactorizationMachineEqualsPairwiseDots() {
        let e = randomTensor([2, 12], seed: 3)  // 2 rows × 4 fields × D 3
        var fm = [Float](repeating: 0, count: 2)
        FactorizationMachine.forward(e.data, rows: 2, fields: 4, dimension: 3, stride: 12, offset: 0, into: &fm)
        for b in 0..<2 {
            var s: Float = 0
            for i in 0..<4 { for j in (i + 1)..<4 { for k in 0..<3 { s += e[b, i * 3 + k] * e[b, j * 3 + k] } } }
            XCTAssertEqual(fm[b], s, accuracy: 1e-5)
        }
    }

    func testDCNBackward() throws {
        var cfg = DCNConfig(tableSizes: [5, 4])
        cfg.denseFeatures = 2
        cfg.embeddingDim = 2
        cfg.crossLayers = 2
        cfg.deepMLP = [5, 1]
        let model = try DCN(config: cfg)
        for t in model.sparseArch.tables { for i in 0..<t.weight.count { t.weight[i] *= 3 } }
        check(model, smallBatch(rows: 4, tableSizes: cfg.tableSizes, seed: 7).withDense(2))
    }

    func testCrossLayerMatchesFormula() {
        var rng = SplitMix64(seed: 1)
        let c = CrossLayer(name: "c", width: 3, rng: &rng)
        let x0 = randomTensor([2, 3], seed: 2), xl = randomTensor([2, 3], seed: 3)
        let y = c.forward(x0: x0, xl: xl)
        for b in 0..<2 {
            for o in 0..<3 {
                var z = c.linear.bias.value[o]
                for i in 0..<3 { z += c.linear.weight.value[o, i] * xl[b, i] }
                XCTAssertEqual(y[b, o], x0[b, o] * z + xl[b, o], accuracy: 1e-5)
            }
        }
    }
}

extension Batch {
    /// The same rows with `n` random dense columns (tests).
    func withDense(_ n: Int) -> Batch {
        Batch(dense: randomTensor([count, n], seed: 11), sparse: sparse, labels: labels)
    }
}
