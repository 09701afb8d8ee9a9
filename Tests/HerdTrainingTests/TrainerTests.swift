import Foundation
import HerdData
import HerdModels
import HerdTensor
import HerdTestSupport
@testable import HerdTraining
import XCTest

/// A planted problem small enough for a debug build: a click is likely when a dense feature is
/// high, when field 0 takes an even id, and when fields 1 and 2 agree in parity (an interaction).
func plantedDataset(rows: Int, seed: UInt64, tableSizes: [Int] = [20, 10, 10]) -> InMemoryBatchSource {
    var rng = SplitMix64(seed: seed)
    let dense = Tensor(shape: [rows, 3])
    var ids = [Int32](repeating: 0, count: rows * tableSizes.count)
    var labels = [Float](repeating: 0, count: rows)
    for r in 0..<rows {
        for c in 0..<3 { dense[r, c] = rng.nextUniform() }
        for (f, n) in tableSizes.enumerated() { ids[f * rows + r] = Int32(rng.next() % UInt64(n)) }
        let a = ids[r], b = ids[rows + r], c = ids[2 * rows + r]
        let z = 2.5 * (dense[r, 0] - 0.5) + (a % 2 == 0 ? 1.2 : -1.2) + ((b % 2) == (c % 2) ? 1.0 : -1.0)
        labels[r] = rng.nextUniform() < Kernels.sigmoid(z) ? 1 : 0
    }
    return InMemoryBatchSource(Batch(dense: dense, sparse: KeyedJagged(oneHot: ids, features: tableSizes.count, batchSize: rows), labels: labels))
}

func smallDLRM(seed: UInt64 = 1) throws -> DLRM {
    var cfg = DLRMConfig(tableSizes: [20, 10, 10])
    cfg.denseFeatures = 3
    cfg.embeddingDim = 4
    cfg.bottomMLP = [16, 4]
    cfg.topMLP = [16, 1]
    cfg.seed = seed
    return try DLRM(config: cfg)
}

final class TrainerTests: XCTestCase {
    func config(epochs: Int) -> TrainerConfig {
        var c = TrainerConfig()
        c.epochs = epochs
        c.batchSize = 128
        c.schedule = LearningRateSchedule(base: 0.02)
        c.optimizers = ["dense": "adam", "sparse": "lazy_adam", "wide": "ftrl"]
        return c
    }

    func testDLRMLearnsThePlantedSignal() throws {
        let train = plantedDataset(rows: 6000, seed: 1), valid = plantedDataset(rows: 2000, seed: 2)
        let t = try Trainer(model: try smallDLRM(), config: config(epochs: 4), train: train, valid: valid)
        let r = try t.run()
        XCTAssertGreaterThan(r.validation!.auc, 0.8)
        XCTAssertEqual(r.state.epoch, 4)
        XCTAssertEqual(r.state.globalStep, 4 * 47)
    }

    func testWideAndDeepLearnsThePlantedSignal() throws {
        var cfg = WideAndDeepConfig(tableSizes: [20, 10, 10])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 4
        cfg.deepMLP = [16, 8, 1]
        cfg.crosses = [[1, 2]]
        cfg.crossBuckets = 50
        let train = plantedDataset(rows: 6000, seed: 1), valid = plantedDataset(rows: 2000, seed: 2)
        var c = config(epochs: 4)
        c.lrScale = ["wide": 5]
        let r = try Trainer(model: try WideAndDeep(config: cfg), config: c, train: train, valid: valid).run()
        XCTAssertGreaterThan(r.validation!.auc, 0.8)
    }

    func testDataParallelStepEqualsSingleWorkerStep() throws {
        let data = plantedDataset(rows: 512, seed: 3)
        let batch = data.batch(range: 0..<512)
        let a = try smallDLRM(), b = try smallDLRM()
        let pa = DataParallel(model: a, workers: 1), pb = DataParallel(model: b, workers: 2)
        let (la, _) = pa.forwardBackward(batch), (lb, _) = pb.forwardBackward(batch)
        XCTAssertEqual(la, lb, accuracy: 1e-3)
        for (x, y) in zip(a.groups[0].parameters, b.groups[0].parameters) {
            XCTAssertLessThan(maxAbsDifference(x.grad.array, y.grad.array), 1e-5, x.name)
        }
        for (x, y) in zip(a.sparseArch.gradients, b.sparseArch.gradients) {
            XCTAssertEqual(x.ids, y.ids)
            XCTAssertLessThan(maxAbsDifference(x.rows.array, y.rows.array), 1e-6)
        }
    }

    func testFusedSparseSGDStepEqualsRowGradientStep() throws {
        // Two workers, plain SGD: the tables are updated straight from the kept bag gradients;
        // one worker with the row-gradient path (optimizer given merged rows) must agree.
        let data = plantedDataset(rows: 512, seed: 5)
        let batch = data.batch(range: 0..<512)
        let a = try smallDLRM(), b = try smallDLRM()
        let pa = DataParallel(model: a, workers: 1), pb = DataParallel(model: b, workers: 2)
        let sgd = try makeOptimizer(spec: "sgd")
        _ = pa.forwardBackward(batch)
        for p in a.groups[0].parameters { sgd.update(p, lr: 0.5) }
        for (t, g) in zip(a.sparseArch.tables, a.sparseArch.gradients) { sgd.update(table: t, gradient: g, lr: 0.5) }
        _ = pb.forwardBackward(batch)
        XCTAssertTrue(b.sparseArch.keepsBagGradients)
        OptimizerSet(byGroup: ["dense": sgd, "sparse": sgd]).step(b, lr: 0.5)
        for ((n, x), (_, y)) in zip(a.namedWeights, b.namedWeights) {
            XCTAssertLessThan(maxAbsDifference(x.array, y.array), 1e-5, n)
        }
    }

    func testEarlyStoppingStopsAfterPatience() throws {
        let train = plantedDataset(rows: 512, seed: 1), valid = plantedDataset(rows: 256, seed: 2)
        var c = config(epochs: 50)
        c.schedule = LearningRateSchedule(base: 0)  // nothing improves after the first validation
        c.patience = 2
        let r = try Trainer(model: try smallDLRM(), config: c, train: train, valid: valid).run()
        XCTAssertTrue(r.state.stoppedEarly)
        XCTAssertEqual(r.state.epoch, 3)
    }

    func testInMemoryShuffledEpochIsAPermutationOfRows() {
        let d = plantedDataset(rows: 300, seed: 4)
        var seen: [Float] = []
        for i in 0..<d.batchCount(size: 64) { seen += d.batch(at: i, size: 64, seed: 9, epoch: 1).dense.array }
        XCTAssertEqual(seen.sorted(), d.all.dense.array.sorted())
        XCTAssertNotEqual(seen, d.all.dense.array)
    }

    func testDivergenceIsReportedNotCrashed() throws {
        let train = plantedDataset(rows: 512, seed: 1)
        var c = config(epochs: 3)
        c.optimizers = ["dense": "sgd", "sparse": "sgd"]
        c.schedule = LearningRateSchedule(base: 1e30)
        XCTAssertThrowsError(try Trainer(model: try smallDLRM(), config: c, train: train, valid: nil).run()) {
            XCTAssertTrue("\($0)".contains("lower the learning rate"), "\($0)")
        }
    }
}

final class TrainerResumeTests: XCTestCase {
    func testResumeAfterAKillEndsWithTheSameWeightsAsAnUninterruptedRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herd-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = plantedDataset(rows: 1000, seed: 1), valid = plantedDataset(rows: 300, seed: 2)
        var c = TrainerConfig()
        c.epochs = 3
        c.batchSize = 100
        c.checkpointEvery = 4
        c.schedule = LearningRateSchedule(base: 0.01)
        c.optimizers = ["dense": "adam", "sparse": "rowwise_adagrad"]

        let reference = try smallDLRM(seed: 1)
        _ = try Trainer(model: reference, config: c, train: train, valid: valid).run()

        // "Killed" after step 14: the last checkpoint is at step 12.
        var killed = c
        killed.maxSteps = 14
        _ = try Trainer(model: try smallDLRM(seed: 1), config: killed, train: train, valid: valid, checkpointDirectory: dir).run()

        // A new process: different initial weights, everything must come from the checkpoint.
        let resumed = try smallDLRM(seed: 99)
        let t = try Trainer(model: resumed, config: c, train: train, valid: valid, checkpointDirectory: dir)
        XCTAssertEqual(try t.resume(), 12)
        let r = try t.run()
        XCTAssertEqual(r.state.globalStep, 30)
        for ((name, a), (_, b)) in zip(reference.namedWeights, resumed.namedWeights) {
            XCTAssertEqual(a.array, b.array, name)
        }
    }
}

final class TwoTowerTrainingTests: XCTestCase {
    /// Users and items in 5 hidden groups; a click is likely when the groups match.
    func affinityData(rows: Int, seed: UInt64) -> InMemoryBatchSource {
        var rng = SplitMix64(seed: seed)
        var users: [Int32] = [], items: [Int32] = [], labels: [Float] = []
        for _ in 0..<rows {
            let u = Int32(rng.next() % 50), i = Int32(rng.next() % 50)
            users.append(u)
            items.append(i)
            let p: Float = u % 5 == i % 5 ? 0.85 : 0.1
            labels.append(rng.nextUniform() < p ? 1 : 0)
        }
        return InMemoryBatchSource(Batch(dense: Tensor(shape: [rows, 0]), sparse: KeyedJagged(oneHot: users + items, features: 2, batchSize: rows), labels: labels))
    }

    func testTwoTowerLearnsAffinityWithBCEAndWithInBatchNegatives() throws {
        for loss in [TwoTowerLoss.bce, .inBatchSoftmax] {
            var cfg = TwoTowerConfig(tableSizes: [50, 50], user: TowerConfig(sparseFeatures: [0], mlp: [16, 8]), item: TowerConfig(sparseFeatures: [1], mlp: [16, 8]))
            cfg.embeddingDim = 8
            cfg.loss = loss
            cfg.seed = 2
            var c = TrainerConfig()
            c.epochs = 10
            c.batchSize = 128
            c.schedule = LearningRateSchedule(base: 0.03)
            c.optimizers = ["dense": "adam", "sparse": "lazy_adam"]
            let r = try Trainer(model: try TwoTower(config: cfg), config: c, train: affinityData(rows: 6000, seed: 1), valid: affinityData(rows: 2000, seed: 2)).run()
            // The planted model's own AUC is ≈ 0.82 (P(click) 0.85 in-group vs 0.1 across groups).
            XCTAssertGreaterThan(r.validation!.auc, 0.77, "\(loss)")
        }
    }
}

final class TrainerResumeMismatchTests: XCTestCase {
    func testResumeWithADifferentBatchSizeOrWorkerCountIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herd-mismatch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = plantedDataset(rows: 600, seed: 1)
        var c = TrainerConfig()
        c.batchSize = 100
        c.checkpointEvery = 2
        c.maxSteps = 3
        c.schedule = LearningRateSchedule(base: 0.01)
        _ = try Trainer(model: try smallDLRM(), config: c, train: train, valid: nil, checkpointDirectory: dir, workers: 2).run()
        var other = c
        other.batchSize = 50
        XCTAssertThrowsError(try Trainer(model: try smallDLRM(), config: other, train: train, valid: nil, checkpointDirectory: dir, workers: 2).resume()) {
            XCTAssertTrue("\($0)".contains("batch size 100 (checkpoint) vs 50 (now)"), "\($0)")
        }
        XCTAssertThrowsError(try Trainer(model: try smallDLRM(), config: c, train: train, valid: nil, checkpointDirectory: dir, workers: 1).resume()) {
            XCTAssertTrue("\($0)".contains("2 workers (checkpoint) vs 1 (now; set HERD_THREADS=2)"), "\($0)")
        }
        XCTAssertEqual(try Trainer(model: try smallDLRM(), config: c, train: train, valid: nil, checkpointDirectory: dir, workers: 2).resume(), 2)
    }

    func testZeroEpochsOrStepsAreRefused() {
        var c = TrainerConfig()
        c.epochs = 0
        XCTAssertThrowsError(try Trainer(model: try smallDLRM(), config: c, train: plantedDataset(rows: 10, seed: 1), valid: nil))
        c.epochs = 1
        c.maxSteps = 0
        XCTAssertThrowsError(try Trainer(model: try smallDLRM(), config: c, train: plantedDataset(rows: 10, seed: 1), valid: nil))
    }
}
