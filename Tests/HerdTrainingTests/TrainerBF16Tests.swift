import Foundation
import HerdData
import HerdModels
import HerdTensor
import HerdTestSupport
@testable import HerdTraining
import XCTest

final class TrainerBF16Tests: XCTestCase {
    func model(_ precision: Precision) throws -> DLRM {
        var cfg = DLRMConfig(tableSizes: [20, 10, 10])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 4
        cfg.bottomMLP = [16, 4]
        cfg.topMLP = [16, 1]
        cfg.seed = 1
        cfg.precision = precision
        cfg.bf16MinWidth = 0  // every layer of this small model in BF16
        return try DLRM(config: cfg)
    }

    /// Same data, initialisation and schedule: BF16 GEMMs reach the FP32 model's AUC.
    func testBF16DLRMReachesTheFP32AUCOnPlantedData() throws {
        let train = plantedDataset(rows: 6000, seed: 1), valid = plantedDataset(rows: 2000, seed: 2)
        var c = TrainerConfig()
        c.epochs = 4
        c.batchSize = 128
        c.schedule = LearningRateSchedule(base: 0.02)
        c.optimizers = ["dense": "adam", "sparse": "lazy_adam", "wide": "ftrl"]
        let fp32 = try Trainer(model: try model(.fp32), config: c, train: train, valid: valid).run()
        let bf16Model = try model(.bf16)
        let bf16 = try Trainer(model: bf16Model, config: c, train: train, valid: valid).run()
        XCTAssertGreaterThan(fp32.validation!.auc, 0.8)
        XCTAssertEqual(bf16.validation!.auc, fp32.validation!.auc, accuracy: 0.01)
        XCTAssertEqual(bf16Model.precision, .bf16)
        // Master weights stay FP32: training leaves values that are not BF16-representable.
        let w = bf16Model.overArch.layers[0].weight.value
        XCTAssertTrue((0..<w.count).contains { BF16.rounded(w[$0]) != w[$0] })
    }

    func testBF16WideAndDeepStepsOnTwoWorkers() throws {
        var cfg = WideAndDeepConfig(tableSizes: [20, 10, 10])
        cfg.denseFeatures = 3
        cfg.embeddingDim = 4
        cfg.deepMLP = [16, 8, 1]
        cfg.precision = .bf16
        cfg.bf16MinWidth = 0
        let m = try WideAndDeep(config: cfg)
        let batch = plantedDataset(rows: 512, seed: 3).batch(range: 0..<512)
        let one = DataParallel(model: m, workers: 1), two = DataParallel(model: try WideAndDeep(config: cfg), workers: 2)
        let (l1, _) = one.forwardBackward(batch), (l2, _) = two.forwardBackward(batch)
        XCTAssertTrue(l1.isFinite)
        XCTAssertEqual(l1, l2, accuracy: 1e-3)
    }
}
