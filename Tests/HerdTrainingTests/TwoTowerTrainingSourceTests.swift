import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTraining
import XCTest

final class TwoTowerTrainingSourceTests: XCTestCase {
    /// 6 training rows over users 1–3 and items 1–5 (rows 2 and 5 are label 0); 6 items in the
    /// item table (item 6 never rated), each with its genres list and a release bin.
    func tables() throws -> (train: FeatureTable, items: FeatureTable) {
        let train = try FeatureTable([
            ("user_id", Column(int64s: [1, 1, 2, 2, 3, 3])),
            ("age_bin", Column(int64s: [1, 1, 2, 2, 0, 0])),
            ("item_id", Column(int64s: [1, 2, 2, 3, 1, 5])),
            ("genres", Column(int64Lists: [[1], [2, 3], [2, 3], [], [1], [4]])),
            ("year_bin", Column(int64s: [1, 2, 2, 1, 1, 3])),
            ("label", Column(int64s: [1, 1, 0, 1, 1, 0])),
        ])
        let items = try FeatureTable([
            ("item_id", Column(int64s: [1, 2, 3, 4, 5, 6])),
            ("genres", Column(int64Lists: [[1], [2, 3], [], [1, 4], [4], [2]])),
            ("year_bin", Column(int64s: [1, 2, 1, 3, 3, 2])),
        ])
        return (train, items)
    }

    let specJSON = """
        {"model": "twotower", "labels": ["label"],
         "user": {"id": "user_id", "embed_cols": ["user_id"], "indicator_cols": ["age_bin"]},
         "item": {"id": "item_id", "embed_cols": ["item_id", "genres"], "indicator_cols": ["year_bin"]},
         "hidden_units": [8, 4], "embed_dim": 4}
        """

    func source(_ sampling: NegativeSampling, seed: UInt64 = 7, logQ: Bool = false) throws -> (TwoTowerTrainingSource, BatchSpec) {
        var spec = try TableModelSpec.decode(Data(specJSON.utf8), source: "s.json")
        if logQ {
            spec.loss = .inBatchSoftmax
            spec.logQCorrection = true
        }
        let (train, items) = try tables()
        let r = try spec.resolve(kind: .twotower, tables: [train], tableName: "train", sizes: ["item_id": 7, "genres": 5, "year_bin": 4])
        guard case .twotower(let tt) = r.config else { throw XCTSkip("not a two-tower config") }
        let s = try TwoTowerTrainingSource(train: train, items: items, itemTableName: "item.herdtable", spec: r.batchSpec, model: tt,
                                           itemKey: "item_id", sampling: sampling, seed: seed)
        return (s, r.batchSpec)
    }

    /// Row `r`'s ids of feature `name` in `b`.
    func ids(_ b: Batch, _ spec: BatchSpec, _ name: String, _ r: Int) -> [Int32] {
        Array(b.sparse.bag(feature: spec.sparse.firstIndex { $0.name == name }!, row: r))
    }

    func testNegativesCarryTheItemTableRowsFeaturesAndThePositivesUserFeatures() throws {
        let (s, spec) = try source(NegativeSampling(perPositive: 3))
        XCTAssertEqual(s.kept, [0, 1, 3, 4])  // label-0 rows dropped
        XCTAssertEqual(s.rows, 4 + 4 * 3)
        let (train, items) = try tables()
        let trainBatch = try train.batch(spec)
        let b = s.batch(rows: Array(0..<s.rows), epoch: 2)
        XCTAssertEqual(b.labels, [1, 1, 1, 1] + [Float](repeating: 0, count: 12))
        for (k, r) in s.kept.enumerated() {
            for f in spec.sparse { XCTAssertEqual(ids(b, spec, f.name, k), ids(trainBatch, spec, f.name, r), f.name) }
        }
        let itemIDs = try items.column("item_id").int64Values!, itemYear = try items.column("year_bin").int64Values!
        guard case let (go, .int64(gv))? = try items.column("genres").listParts else { return XCTFail("genres is not an int64 list") }
        let trainItems = try train.column("item_id").int64Values!
        for p in 0..<4 {
            for k in 0..<3 {
                let row = 4 + p * 3 + k, i = s.negativeItem(positive: p, k: k, epoch: 2), pos = s.positives[p]
                XCTAssertEqual(ids(b, spec, "item_id", row), [Int32(itemIDs[i])])
                XCTAssertEqual(ids(b, spec, "genres", row), gv[go[i]..<go[i + 1]].map { Int32($0) })
                XCTAssertEqual(ids(b, spec, "year_bin", row), [Int32(itemYear[i])])
                XCTAssertNotEqual(itemIDs[i], trainItems[pos], "a negative equal to the positive's own item")
                XCTAssertEqual(ids(b, spec, "user_id", row), ids(trainBatch, spec, "user_id", pos))
                XCTAssertEqual(ids(b, spec, "age_bin", row), ids(trainBatch, spec, "age_bin", pos))
            }
        }
    }

    func testDrawsAreAFunctionOfSeedAndEpochAndChangeWithThem() throws {
        let (a, _) = try source(NegativeSampling(perPositive: 4))
        let (again, _) = try source(NegativeSampling(perPositive: 4))
        let (other, _) = try source(NegativeSampling(perPositive: 4), seed: 8)
        func draws(_ s: TwoTowerTrainingSource, _ epoch: Int) -> [Int] {
            (0..<4).flatMap { p in (0..<4).map { s.negativeItem(positive: p, k: $0, epoch: epoch) } }
        }
        XCTAssertEqual(draws(a, 0), draws(again, 0))
        XCTAssertNotEqual(draws(a, 0), draws(a, 1))
        XCTAssertNotEqual(draws(a, 0), draws(other, 0))
        // A batch is the same whichever order the epoch's batches are asked for.
        let rows = [9, 3, 15, 0]
        XCTAssertEqual(a.batch(rows: rows, epoch: 1).sparse, a.batch(rows: rows, epoch: 1).sparse)
        XCTAssertEqual(a.epochBatch(at: 1, size: 5, seed: 3, epoch: 1).sparse, again.epochBatch(at: 1, size: 5, seed: 3, epoch: 1).sparse)
        // Every item other than the positive's own is drawn over enough epochs (uniform).
        let seen = Set((0..<50).flatMap { draws(a, $0) })
        XCTAssertEqual(seen, Set(0..<6))
    }

    func testKeepingTheTablesNegatives() throws {
        let (s, _) = try source(NegativeSampling(perPositive: 2, tableNegatives: .keep))
        XCTAssertEqual(s.kept, Array(0..<6))
        XCTAssertEqual(s.rows, 6 + 4 * 2)
        XCTAssertEqual(s.batch(rows: Array(0..<6), epoch: 0).labels, [1, 1, 0, 1, 1, 0])
    }

    func testPopularitySamplingDrawsLikedItemsOnlyAndLogQIsTheirShare() throws {
        let (s, spec) = try source(NegativeSampling(perPositive: 2, distribution: .popularity), logQ: true)
        // Positives' items: 1, 2, 3, 1 → item-table rows 0 (2×), 1, 2; share of 4 positives.
        let drawn = Set((0..<200).flatMap { e in (0..<4).flatMap { p in (0..<2).map { s.negativeItem(positive: p, k: $0, epoch: e) } } })
        XCTAssertEqual(drawn, [0, 1, 2])
        XCTAssertEqual(s.logQOfItem[0], Float(log(0.5)), accuracy: 1e-6)
        XCTAssertEqual(s.logQOfItem[1], Float(log(0.25)), accuracy: 1e-6)
        let b = s.batch(rows: [0, 1, 2, 3], epoch: 0)
        XCTAssertEqual(b.dense.columns, spec.dense.count + 1)
        XCTAssertEqual((0..<4).map { b.dense[$0 * b.dense.columns + spec.dense.count] }, [log(0.5), log(0.25), log(0.25), log(0.5)].map { Float($0) })
    }

    func testAnItemTableWithoutTheItemTowersColumnsIsAnError() throws {
        let spec = try TableModelSpec.decode(Data(specJSON.utf8), source: "s.json")
        let (train, items) = try tables()
        let r = try spec.resolve(kind: .twotower, tables: [train], tableName: "train")
        guard case .twotower(let tt) = r.config else { return XCTFail() }
        XCTAssertThrowsError(try TwoTowerTrainingSource(train: train, items: try items.select(["item_id", "genres"]), itemTableName: "W/features/item.herdtable",
                                                        spec: r.batchSpec, model: tt, itemKey: "item_id", sampling: NegativeSampling(perPositive: 1), seed: 0)) {
            XCTAssertTrue("\($0)".contains("W/features/item.herdtable: no column \"year_bin\""), "\($0)")
        }
    }

    func testSpecNegativesAndLogQKeys() throws {
        let spec = try TableModelSpec.decode(Data(specJSON.replacingOccurrences(of: "\"embed_dim\": 4", with: """
            "embed_dim": 4, "loss": "in_batch_softmax", "logq_correction": true,
            "negatives": {"per_positive": 0, "sampling": "popularity", "table_negatives": "keep"}
            """).utf8), source: "s.json")
        XCTAssertEqual(spec.negatives, NegativeSampling(perPositive: 0, distribution: .popularity, tableNegatives: .keep))
        XCTAssertTrue(spec.logQCorrection)
        let (train, _) = try tables()
        guard case .twotower(let tt) = try spec.resolve(kind: .twotower, tables: [train], tableName: "train").config else { return XCTFail() }
        XCTAssertEqual(tt.logQColumn, 0)  // no dense columns: log q is the first
        for (bad, message) in [("\"negatives\": {\"per_positve\": 2}", "s.json: negatives.per_positve: unknown key"),
                               ("\"negatives\": {\"sampling\": \"zipf\"}", "negatives.sampling: must be \"uniform\" or \"popularity\""),
                               ("\"logq_correction\": true", "logq_correction: applies to \"loss\": \"in_batch_softmax\" only")] {
            XCTAssertThrowsError(try TableModelSpec.decode(Data(specJSON.replacingOccurrences(of: "\"embed_dim\": 4", with: "\"embed_dim\": 4, \(bad)").utf8), source: "s.json")) {
                XCTAssertTrue("\($0)".contains(message), "\($0)")
            }
        }
    }

    func testTrainerDrawsNegativesAnewEachEpoch() throws {
        let spec = try TableModelSpec.decode(Data(specJSON.utf8), source: "s.json")
        let (train, items) = try tables()
        let r = try spec.resolve(kind: .twotower, tables: [train], tableName: "train", sizes: ["item_id": 7, "genres": 5, "year_bin": 4])
        guard case .twotower(let tt) = r.config else { return XCTFail() }
        let s = try TwoTowerTrainingSource(train: train, items: items, itemTableName: "item", spec: r.batchSpec, model: tt,
                                           itemKey: "item_id", sampling: NegativeSampling(perPositive: 2), seed: 1)
        XCTAssertEqual(s.trainingBatch(at: 0, size: 12, seed: 0, epoch: 0).sparse, s.epochBatch(at: 0, size: 12, seed: 0, epoch: 0).sparse)
        XCTAssertNotEqual(s.trainingBatch(at: 0, size: 12, seed: 0, epoch: 0).sparse, s.trainingBatch(at: 0, size: 12, seed: 0, epoch: 1).sparse)
        var c = TrainerConfig()
        c.epochs = 2
        c.batchSize = 4
        c.optimizers = ["dense": "adam", "sparse": "lazy_adam"]
        let result = try Trainer(model: try TwoTower(config: tt), config: c, train: s, valid: nil, workers: 1).run()
        XCTAssertEqual(result.state.samplesSeen, 2 * 12)
    }
}
