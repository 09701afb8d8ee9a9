import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor
@testable import HerdTraining
import XCTest

/// Model specs by column names: decoding, resolution against a feature table, errors, built-ins.
final class TableModelSpecTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The example pipeline's output on a few generated RecSys 2021 rows.
    static let recsysTable: FeatureTable = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herd-spec-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try! RecSys2021Generator(rows: 2000, seed: 5).write(to: dir, testFraction: 0.2)
        let reader = CSVReader(schema: try! CSVSchema.load(path: root.appendingPathComponent("examples/recsys2021/schema.json").path))
        let pipeline = try! Pipeline.load(path: root.appendingPathComponent("examples/recsys2021/pipeline.json").path)
        return try! pipeline.fit(try! reader.read(path: dir + "/train.txt").table).0
    }()

    func testEmbeddedBuiltInsEqualTheExampleFiles() throws {
        for (kind, file) in [(ModelKind.wnd, "wnd.json"), (.twotower, "two_tower.json")] {
            let text = try String(contentsOf: Self.root.appendingPathComponent("examples/recsys2021/\(file)"), encoding: .utf8)
            XCTAssertEqual(TableModelSpec.builtInText("recsys2021", kind: kind), text, file)
            XCTAssertEqual(try TableModelSpec.builtIn("recsys2021", kind: kind)?.model, kind)
        }
        XCTAssertEqual(TableModelSpec.builtInText("recsys2021", kind: .dlrm), TableModelSpec.builtInText("recsys2021", kind: .wnd))
        XCTAssertNil(try TableModelSpec.builtIn("movielens-1m", kind: .wnd))
    }

    func testRecSysWideAndDeepResolvesToFriesiansInputs() throws {
        let t = Self.recsysTable
        let r = try TableModelSpec.builtIn("recsys2021", kind: .wnd)!.resolve(kind: .wnd, tables: [t], tableName: "train.herdtable", seed: 4)
        guard case .wnd(let c) = r.config else { return XCTFail("\(r.config)") }
        let names = r.batchSpec.sparse.map(\.name)
        XCTAssertEqual(Array(names.prefix(4)), ["engaged_with_user_id", "enaging_user_id", "hashtags", "present_domains"])
        XCTAssertEqual(c.wideFeatures!.map { names[$0] }, ["engaged_with_user_is_verified", "enaging_user_is_verified", "present_media_language"])
        XCTAssertEqual(c.indicators.count, 8)
        XCTAssertEqual(c.dims, [8, 8, 8, 8] + Array(repeating: 0, count: 11))
        XCTAssertEqual(r.batchSpec.dense, ["len_hashtags", "len_domains", "len_links"])
        XCTAssertEqual(c.denseFeatures, 3)
        XCTAssertEqual(r.batchSpec.labels, ["reply", "retweet", "retweet_with_comment", "like"])
        XCTAssertEqual(c.deepMLP, [1024, 512, 256, 1])
        XCTAssertTrue(c.batchNorm)
        XCTAssertEqual(c.dropout, 0.1)
        XCTAssertEqual(c.seed, 4)
        // Cardinalities: the largest id + 1 in the table, raised by sizes.json.
        let cross = names.firstIndex(of: "present_media_language")!
        XCTAssertEqual(r.batchSpec.sparse[cross].cardinality, Int(try t.column("present_media_language").int64Values!.max()!) + 1)
        let raised = try TableModelSpec.builtIn("recsys2021", kind: .wnd)!.resolve(kind: .wnd, tables: [t], tableName: "t", sizes: ["present_media_language": 600])
        XCTAssertEqual(raised.batchSpec.sparse[cross].cardinality, 600)
        // The model builds and runs on the table.
        let m = try r.config.build()
        XCTAssertEqual(m.forward(try t.gather(Array(0..<16)).batch(r.batchSpec)).shape, [16, 1])
    }

    func testRecSysTwoTowerAndDLRMResolve() throws {
        let t = Self.recsysTable
        let r = try TableModelSpec.builtIn("recsys2021", kind: .twotower)!.resolve(kind: .twotower, tables: [t], tableName: "train")
        guard case .twotower(let c) = r.config else { return XCTFail("\(r.config)") }
        let names = r.batchSpec.sparse.map(\.name)
        XCTAssertEqual(c.user.sparseFeatures.map { names[$0] }, ["enaging_user_id"])
        XCTAssertEqual(c.user.indicators.map { names[$0] }, ["enaging_user_is_verified", "enaging_user_follower_count", "enaging_user_following_count"])
        XCTAssertEqual(c.item.sparseFeatures.map { names[$0] }, ["engaged_with_user_id", "hashtags", "present_links", "present_domains"])
        XCTAssertEqual(c.item.denseFeatures.map { r.batchSpec.dense[$0] }, ["len_hashtags", "len_domains", "len_links"])
        XCTAssertEqual(c.user.mlp, [1024, 512, 128])
        XCTAssertEqual(c.embeddingDim, 16)
        XCTAssertEqual(r.keyColumns, ["user": "enaging_user_id", "item": "tweet_id"])

        let d = try TableModelSpec.builtIn("recsys2021", kind: .dlrm)!.resolve(kind: .dlrm, tables: [t], tableName: "train")
        XCTAssertEqual(d.batchSpec.sparse.map(\.name), ["engaged_with_user_id", "enaging_user_id", "hashtags", "present_domains"])
        XCTAssertEqual(d.batchSpec.dense, ["len_hashtags", "len_domains", "len_links"])
        guard case .dlrm(let dc) = d.config else { return XCTFail() }
        XCTAssertEqual(dc.denseFeatures, 3)
        XCTAssertEqual(dc.bottomMLP.last, dc.embeddingDim)
        for kind in [ModelKind.deepfm, .dcn] {
            XCTAssertEqual(try TableModelSpec.builtIn("recsys2021", kind: kind)!.resolve(kind: kind, tables: [t], tableName: "train").config.kind, kind)
        }
    }

    func spec(_ json: String) throws -> TableModelSpec { try TableModelSpec.decode(Data(json.utf8), source: "s.json") }

    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    func testErrorsNameTheFileTheKeyAndTheTablesColumns() throws {
        let t = try FeatureTable([("a", Column(int64s: [0, 1, 2])), ("x", Column(doubles: [0, 1, 2])), ("y", Column(int64s: [0, 1, 0])),
                                  ("s", Column(strings: ["p", "q", "r"]))])
        let e = message { try self.spec(#"{"model": "wnd", "labels": ["y"], "embed_cols": ["a", "b"], "embed_out_dims": [4, 4]}"#)
            .resolve(kind: .wnd, tables: [t], tableName: "train.herdtable") }
        XCTAssertEqual(e, #"s.json: embed_cols: no column "b" in train.herdtable (its columns: a, x, y, s)"#)
        XCTAssertTrue(message { try self.spec(#"{"model": "wnd", "labels": ["y"], "embed_cols": ["s"]}"#).resolve(kind: .wnd, tables: [t], tableName: "t") }
            .contains("column 's' has type string"))
        XCTAssertEqual(message { try self.spec(#"{"model": "wnd", "labels": ["y"], "embed_cols": ["a"], "embed_out_dims": [4, 4]}"#) },
                       "s.json: embed_out_dims: has 2 sizes for 1 embed_cols")
        XCTAssertTrue(message { try self.spec(#"{"model": "wnd", "labels": ["y"], "embed_cols": ["a"], "hiden_units": [4]}"#) }
            .hasPrefix("s.json: hiden_units: unknown key (known here: "))
        XCTAssertTrue(message { try self.spec(#"{"model": "mf", "labels": ["y"]}"#) }.hasPrefix("s.json: model: must be \"wnd\" or \"twotower\""))
        XCTAssertEqual(message { try self.spec(#"{"model": "twotower", "labels": ["y"], "user": {"id": "a", "embed_cols": ["a"]}, "item": {"embed_cols": ["y"]}}"#) },
                       "s.json: item.id: missing")
        let tt = try spec(#"{"model": "twotower", "labels": ["y"], "user": {"id": "a", "embed_cols": ["a"]}, "item": {"id": "y", "embed_cols": ["y"], "numerical_cols": ["x"]}, "hidden_units": [4]}"#)
        XCTAssertEqual(message { try tt.resolve(kind: .wnd, tables: [t], tableName: "t") }, "s.json describes a twotower model; --model wnd needs a wnd spec")
        let r = try tt.resolve(kind: .twotower, tables: [t], tableName: "t")
        XCTAssertEqual(r.batchSpec, BatchSpec(sparse: [.init(name: "a", cardinality: 3), .init(name: "y", cardinality: 2)], dense: ["x"], labels: ["y"]))
    }
}
