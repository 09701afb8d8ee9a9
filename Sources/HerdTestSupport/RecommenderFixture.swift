import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdServing
import HerdTensor
import HerdTraining

/// A small RecSys 2021 workspace as the workflow leaves it, built in-process: generated rows →
/// the built-in pipeline → train/test/user/item tables and the fitted pipeline (raw ids); an untrained Wide & Deep export (the
/// built-in spec, small hidden layers) as `models/wnd/1`; random unit user/item embeddings keyed
/// by the tables' keys; `Nearline.run` with a Flat index into the embedded store.
public struct RecommenderFixture {
    public let workspace: Workspace
    public let features: RecSys2021Features
    public let export: ModelExport
    public let dimension: Int

    public static func make(rows: Int = 2000, dimension: Int = 8, seed: UInt64 = 5) throws -> RecommenderFixture {
        let w = Workspace(path: try fixtureDirectory().path)
        try w.create()
        _ = try RecSys2021Generator(rows: rows, seed: seed).write(to: w.data.path, testFraction: 0.2)
        let reader = CSVReader(schema: try CSVSchema.load(path: w.data.appendingPathComponent("schema.json").path))
        let f = try RecSys2021Features.preprocess(
            train: try reader.read(path: w.data.appendingPathComponent("train.txt").path).table,
            test: try reader.read(path: w.data.appendingPathComponent("test.txt").path).table,
            pipeline: try RecSys2021Features.pipeline())
        for (name, table) in [("train", f.train), ("test", f.test), ("user", f.users), ("item", f.items)] {
            try TableFile.write(table, to: w.table(name).path)
        }
        try f.fitted.save(path: w.fittedPipeline.path)  // raw ↔ encoded ids, as `herd preprocess` leaves them
        var spec = try unwrap(try TableModelSpec.builtIn("recsys2021", kind: .wnd), "the built-in recsys2021 spec")
        spec.hiddenUnits = [16, 8]
        let resolved = try spec.resolve(kind: .wnd, tables: [f.train, f.test], tableName: "train", sizes: f.sizes, seed: seed)
        let export = ModelExport(config: resolved.config, model: try resolved.config.build(), featureState: .table(f.fitted, resolved.batchSpec))
        try export.write(to: w.model("wnd", version: 1))

        var rng = SplitMix64(seed: seed)
        for (side, table, key) in [("user", f.users, RecSys2021Features.userKey), ("item", f.items, RecSys2021Features.itemKey)] {
            let ids = try table.column(key).int64Values!
            var v = [Float](repeating: 0, count: ids.count * dimension)
            for r in 0..<ids.count {
                var norm: Float = 0
                for j in 0..<dimension {
                    let x = Float(rng.next() % 2001) / 1000 - 1
                    v[r * dimension + j] = x
                    norm += x * x
                }
                for j in 0..<dimension { v[r * dimension + j] /= max(norm.squareRoot(), 1e-6) }
            }
            try SafeTensors.write([SafeTensorsItem("ids", int64: ids), SafeTensorsItem("embeddings", Tensor(shape: [ids.count, dimension], values: v))],
                                  metadata: ["key_column": key], to: w.embeddingTable(side))
        }
        var config = NearlineConfig(workspace: w)
        config.index = "Flat"
        _ = try Nearline.run(config) { _ in }
        return RecommenderFixture(workspace: w, features: f, export: try ModelExport.load(from: w.model("wnd", version: 1)), dimension: dimension)
    }

    public func remove() { try? FileManager.default.removeItem(at: workspace.root) }

    /// Users with an embedding.
    public var userIDs: [Int64] { try! features.users.column(RecSys2021Features.userKey).int64Values! }
    public var itemIDs: [Int64] { try! features.items.column(RecSys2021Features.itemKey).int64Values! }

    /// The plain reference path: the user's and the candidates' rows straight from the workspace
    /// tables, joined column by column (a column in neither table is 0), one forward over all rows
    /// of a fresh copy of the export, sigmoid. Returns probability by item id. `user` nil = the
    /// empty user (a cold-start user without a row in the store).
    public func referenceProbabilities(user: Int64?, items: [Int64]) throws -> [Int64: Float] {
        let spec = try unwrap(export.featureState.batchSpec, "the export's batch spec").unlabelled
        let itemRows = items.map { id in itemIDs.firstIndex(of: id)! }
        let u: FeatureTable
        if let user {
            let userRow = try unwrap(userIDs.firstIndex(of: user), "user \(user) in the user table")
            u = features.users.gather([Int](repeating: userRow, count: items.count))
        } else {
            // The empty user: every user column null (read as 0), its id 0 (unknown).
            u = try FeatureTable(try features.users.schema.map { field -> (String, Column) in
                let name = field.name
                if name == RecSys2021Features.userKey { return (name, Column(int64s: [Int64?](repeating: 0, count: items.count))) }
                switch field.type {
                case .int64: return (name, Column(int64s: [Int64?](repeating: nil, count: items.count)))
                case .double: return (name, Column(doubles: [Double?](repeating: nil, count: items.count)))
                default: throw FixtureError(description: "fixture: user column \(name) is \(field.type)")
                }
            })
        }
        let i = features.items.gather(itemRows)
        let sparse = Set(spec.sparse.map(\.name))
        var columns: [(String, Column)] = []
        for name in spec.columns {
            if i.contains(name) { columns.append((name, try i.column(name))) }
            else if u.contains(name) { columns.append((name, try u.column(name))) }
            else { columns.append((name, sparse.contains(name) ? Column(int64s: [Int64?](repeating: 0, count: items.count)) : Column(doubles: [Double?](repeating: 0, count: items.count)))) }
        }
        let batch = try FeatureTable(columns).batch(spec)
        let model = try ModelExport.load(from: workspace.model("wnd", version: 1)).model
        model.setMode(.inference)
        let logits = model.forward(batch)
        var out: [Int64: Float] = [:]
        for (r, id) in items.enumerated() { out[id] = Kernels.sigmoid(logits[r]) }
        return out
    }
}

private struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

private func unwrap<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw FixtureError(description: "fixture: no \(what)") }
    return value
}

private func fixtureDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("herd-serving-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
