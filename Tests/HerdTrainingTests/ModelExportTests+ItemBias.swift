import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor
import HerdTestSupport
@testable import HerdTraining
import XCTest

extension ModelExportTests {
    /// A two-tower with a per-item bias (keyed by `lang`, the item side here) exports and loads
    /// with its bias: same logits, same widened item embeddings.
    func testTwoTowerItemBiasRoundTrips() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (_, fitted, spec, batch) = try encodedTable()
        var c = TwoTowerConfig(tableSizes: spec.sparse.map(\.cardinality),
                               user: TowerConfig(sparseFeatures: [0], mlp: [8, 4]), item: TowerConfig(sparseFeatures: [1], denseFeatures: [0], mlp: [8, 4]))
        c.embeddingDim = 3
        c.itemBiasFeature = 1
        c.seed = 5
        let config = ModelConfig.twotower(c)
        let model = try XCTUnwrap(try config.build() as? TwoTower)
        model.itemBias!.tables[0].weight.copy(from: randomTensor([spec.sparse[1].cardinality, 1], seed: 2))
        let url = dir.url.appendingPathComponent("1")
        try ModelExport(config: config, model: model, featureState: .table(fitted, spec)).write(to: url)
        let loaded = try XCTUnwrap(try ModelExport.load(from: url).model as? TwoTower)
        XCTAssertEqual(loaded.itemBias!.tables[0].weight.array, model.itemBias!.tables[0].weight.array)
        XCTAssertEqual(logits(loaded, batch), logits(model, batch))
        let items = Batch(dense: batch.dense, sparse: batch.sparse.select(features: [1]), labels: [])
        XCTAssertEqual(loaded.embed(.item, items).array, model.embed(.item, items).array)
        XCTAssertEqual(loaded.embed(.item, items).columns, 5)
    }
}
