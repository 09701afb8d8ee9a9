import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor
import HerdTestSupport
@testable import HerdTraining
import XCTest

/// `ModelExport` with both feature transforms: Criteo feature state (and manifests written before
/// table models existed) and feature-table pipeline + batch spec.
final class ModelExportTests: XCTestCase {
    /// A raw table, the pipeline fitted on it, the encoded table and its batch spec.
    func encodedTable() throws -> (raw: FeatureTable, fitted: FittedPipeline, spec: BatchSpec, batch: Batch) {
        let raw = try FeatureTable([
            ("user", Column(strings: ["a", "b", "a", "c", "b", "a", "d", "b"])),
            ("lang", Column(strings: ["en", "fr", "en", "en", "de", "fr", "en", "en"])),
            ("len", Column(doubles: [1, 2, 0, 4, 3, 1, 0, 2])),
            ("click", Column(int64s: [1, 0, 1, 0, 0, 1, 0, 1])),
        ])
        let pipeline = try Pipeline.decode(json: try JSONValue(json: Data("""
            {"steps": [{"op": "categorify", "columns": ["user", "lang"]}, {"op": "min_max_scale", "columns": ["len"]}]}
            """.utf8)))
        let (encoded, fitted) = try pipeline.fit(raw)
        let spec = try BatchSpec.infer(sparse: ["user", "lang"], dense: ["len"], labels: ["click"], tables: [encoded])
        return (raw, fitted, spec, try encoded.batch(spec))
    }

    func wndConfig(_ spec: BatchSpec) -> ModelConfig {
        var c = WideAndDeepConfig(tableSizes: spec.sparse.map(\.cardinality))
        c.denseFeatures = spec.dense.count
        c.embeddingDims = [4, 0]
        c.indicators = [1]
        c.deepMLP = [8, 1]
        c.seed = 3
        return .wnd(c)
    }

    func logits(_ model: any RankingModel, _ batch: Batch) -> [Float] {
        model.setMode(.inference)
        return model.forward(batch).array
    }

    func testTableExportRoundTripsPipelineSpecAndWeights() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (raw, fitted, spec, batch) = try encodedTable()
        let config = wndConfig(spec)
        let model = try config.build()
        let url = dir.url.appendingPathComponent("1")
        try ModelExport(config: config, model: model, featureState: .table(fitted, spec)).write(to: url)
        XCTAssertEqual(try dir.contents("1"), ["manifest.json", "pipeline.fitted.json", "pipeline.fitted.json.strings", "weights.safetensors"])

        let loaded = try ModelExport.load(from: url)
        XCTAssertEqual(loaded.featureState, .table(fitted, spec))
        XCTAssertEqual(loaded.featureState.batchSpec, spec)
        XCTAssertNil(loaded.featureState.criteoState)
        XCTAssertEqual(loaded.config, config)
        XCTAssertEqual(logits(loaded.model, batch), logits(model, batch))
        // The exported pipeline encodes raw rows as at training time.
        guard case .table(let p?, _) = loaded.featureState else { return XCTFail("no pipeline") }
        XCTAssertEqual(try p.apply(raw).batch(spec).sparse.ids, batch.sparse.ids)

        // Without a pipeline (a pre-encoded training table): no pipeline file.
        let url2 = dir.url.appendingPathComponent("2")
        try ModelExport(config: config, model: model, featureState: .table(nil, spec)).write(to: url2)
        XCTAssertEqual(try dir.contents("2"), ["manifest.json", "weights.safetensors"])
        XCTAssertEqual(try ModelExport.load(from: url2).featureState, .table(nil, spec))
    }

    func testCriteoExportsKeepTheirManifestFormAndOldManifestsLoad() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var c = DLRMConfig(tableSizes: Array(repeating: 7, count: Criteo.sparseCount))
        c.embeddingDim = 4
        c.bottomMLP = [8, 4]
        c.topMLP = [8, 1]
        let config = ModelConfig.dlrm(c)
        let model = try config.build()
        let state = FeatureState.hashing(tableSize: 7)
        // As the exporter wrote it before table models: feature_state = the state's JSON, no kind.
        let old = dir.url.appendingPathComponent("old")
        try ModelDirectory.write(to: old, modelType: "dlrm", config: try config.jsonData(), featureState: try state.jsonData(), tensors: model.namedWeights)
        let loaded = try ModelExport.load(from: old)
        XCTAssertEqual(loaded.featureState, .criteo(state))
        XCTAssertEqual(loaded.featureState.criteoState, state)

        let new = dir.url.appendingPathComponent("new")
        try ModelExport(config: config, model: model, featureState: state).write(to: new)
        let manifest = try JSONValue(json: Data(contentsOf: new.appendingPathComponent("manifest.json")))
        XCTAssertNil(manifest["feature_state"]?["kind"], "Criteo feature state is written without a kind tag")
        XCTAssertEqual(manifest["feature_state"], try JSONValue(json: state.jsonData()))
        XCTAssertEqual(try ModelExport.load(from: new).featureState, .criteo(state))
    }

    func testInconsistentOrUnknownTransformsAreRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (_, fitted, spec, _) = try encodedTable()
        let config = wndConfig(spec)
        let model = try config.build()
        var wrong = spec
        wrong.sparse[0].cardinality += 1
        let e = assertThrows(TrainingError.self) {
            try ModelExport(config: config, model: model, featureState: .table(fitted, wrong)).write(to: dir.url.appendingPathComponent("x"))
        }
        XCTAssertTrue(e?.description.contains("user:\(wrong.sparse[0].cardinality)") ?? false, e?.description ?? "")

        let url = dir.url.appendingPathComponent("y")
        try ModelDirectory.write(to: url, modelType: "wnd", config: try config.jsonData(),
                                 featureState: Data(#"{"kind": "parquet", "batch_spec": {}}"#.utf8), tensors: model.namedWeights)
        let e2 = assertThrows(TrainingError.self) { try ModelExport.load(from: url) }
        XCTAssertTrue(e2?.description.contains("kind \"parquet\"") ?? false, e2?.description ?? "")

        // A two-tower model cannot carry Criteo features.
        let tt = ModelConfig.twotower(TwoTowerConfig(tableSizes: [3, 3], user: TowerConfig(sparseFeatures: [0], mlp: [4]), item: TowerConfig(sparseFeatures: [1], mlp: [4])))
        XCTAssertNotNil(assertThrows(TrainingError.self) {
            try ModelExport(config: tt, model: try tt.build(), featureState: .hashing(tableSize: 3)).write(to: dir.url.appendingPathComponent("z"))
        })
    }
}
