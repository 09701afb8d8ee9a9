import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTraining
import XCTest

/// `"item_bias": true`: resolved to the item id's feature, and started at the items' log popularity.
extension TwoTowerTrainingSourceTests {
    func testItemBiasKeyResolvesToTheItemIDAndStartsAtLogPopularity() throws {
        let json = specJSON.replacingOccurrences(of: "\"embed_dim\": 4", with: "\"embed_dim\": 4, \"loss\": \"in_batch_softmax\", \"logq_correction\": true, \"item_bias\": true")
        let spec = try TableModelSpec.decode(Data(json.utf8), source: "s.json")
        XCTAssertTrue(spec.itemBias)
        let (train, items) = try tables()
        let r = try spec.resolve(kind: .twotower, tables: [train], tableName: "train", sizes: ["item_id": 8])
        guard case .twotower(let tt) = r.config else { return XCTFail() }
        let f = try XCTUnwrap(tt.itemBiasFeature)
        XCTAssertEqual(r.batchSpec.sparse[f].name, "item_id")
        let model = try TwoTower(config: tt)
        let s = try TwoTowerTrainingSource(train: train, items: items, itemTableName: "item.herdtable", spec: r.batchSpec, model: tt,
                                           itemKey: "item_id", sampling: NegativeSampling(perPositive: 0), seed: 1)
        XCTAssertEqual(s.startItemBias(of: model), 6)
        // Positives' items 1, 2, 3, 1 of 4: log q = log ½, log ¼, log ¼; never liked (4, 5, 6): log(0.5/4),
        // the floor, so the bias is log q − floor; id 0 (unknown) and 7 (no item row) stay 0.
        let floor = log(0.5 / 4.0)
        let expected = [0, log(0.5) - floor, log(0.25) - floor, log(0.25) - floor, 0, 0, 0, 0].map { Float($0) }
        let w = model.itemBias!.tables[0].weight.array
        for (a, e) in zip(w, expected) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        // Without a bias nothing is set.
        let plain = try TwoTower(config: { var c = tt; c.itemBiasFeature = nil; return c }())
        XCTAssertEqual(s.startItemBias(of: plain), 0)
    }

    func testItemBiasNeedsTheItemIDAmongTheItemTowersInputs() throws {
        let json = specJSON.replacingOccurrences(of: "\"embed_cols\": [\"item_id\", \"genres\"]", with: "\"embed_cols\": [\"genres\"]")
            .replacingOccurrences(of: "\"embed_dim\": 4", with: "\"embed_dim\": 4, \"item_bias\": true")
        XCTAssertThrowsError(try TableModelSpec.decode(Data(json.utf8), source: "s.json")) {
            XCTAssertTrue("\($0)".contains("s.json: item_bias: keys the bias by item.id \"item_id\""), "\($0)")
        }
    }
}
