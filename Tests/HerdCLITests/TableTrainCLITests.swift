import Foundation
import HerdData
import HerdFeatures
import HerdTraining
import XCTest

/// The recsys workflow from the CLI on a workspace built here: generated RecSys 2021 rows → the
/// example pipeline → W/features/{train,test,user,item}.herdtable → `herd train --workspace W
/// --spec recsys2021` (W&D, two-tower) → `herd evaluate` → `herd predict` (probabilities,
/// embeddings).
final class TableTrainCLITests: XCTestCase {
    static let lock = NSLock()
    nonisolated(unsafe) static var built: (Workspace, testRows: Int, users: [Int64], items: [Int64])?

    /// A workspace with the features `herd preprocess recsys2021` writes (built with the library).
    static func workspace() throws -> (Workspace, testRows: Int, users: [Int64], items: [Int64]) {
        lock.lock()
        defer { lock.unlock() }
        if let built { return built }
        let ws = Workspace(path: try CLIFixtures.scratch("tabletrain-ws").path)
        try ws.create()
        _ = try RecSys2021Generator(rows: 3000, seed: 6).write(to: ws.data.path, testFraction: 0.2)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let reader = CSVReader(schema: try CSVSchema.load(path: ws.data.appendingPathComponent("schema.json").path))
        let pipeline = try Pipeline.load(path: root.appendingPathComponent("examples/recsys2021/pipeline.json").path)
        let rawTrain = try reader.read(path: ws.data.appendingPathComponent("train.txt").path).table
        let (train, fitted) = try pipeline.fit(rawTrain)
        let test = try fitted.apply(try reader.read(path: ws.data.appendingPathComponent("test.txt").path).table)
        try TableFile.write(train, to: ws.table("train").path)
        try TableFile.write(test, to: ws.table("test").path)
        try fitted.save(path: ws.fittedPipeline.path)
        // User and item tables: one row per key, the tower's columns encoded as in train. Tweets
        // get int64 keys here (the pipeline drops tweet_id).
        var codes: [String: Int64] = [:]
        let tweetIDs = try rawTrain.column("tweet_id")
        let keys = (0..<rawTrain.rowCount).map { r -> Int64? in
            guard case .string(let s) = tweetIDs[r] else { return nil }
            if let c = codes[s] { return c }
            codes[s] = Int64(codes.count + 1)
            return codes[s]
        }
        let withKeys = try train.with("tweet_id", Column(int64s: keys))
        let users = try withKeys.select(["enaging_user_id", "enaging_user_is_verified", "enaging_user_follower_count", "enaging_user_following_count"])
            .dropDuplicates(["enaging_user_id"])
        let items = try withKeys.select(["tweet_id", "engaged_with_user_id", "hashtags", "present_links", "present_domains", "engaged_with_user_is_verified",
                                         "present_media", "tweet_type", "language", "engaged_with_user_follower_count", "engaged_with_user_following_count",
                                         "len_hashtags", "len_domains", "len_links"]).dropDuplicates(["tweet_id"])
        try TableFile.write(users, to: ws.table("user").path)
        try TableFile.write(items, to: ws.table("item").path)
        built = (ws, test.rowCount, try users.column("enaging_user_id").int64Values!, try items.column("tweet_id").int64Values!)
        return built!
    }

    func testWideAndDeepTrainsEvaluatesAndPredictsInAWorkspace() throws {
        let (ws, testRows, _, _) = try Self.workspace()
        let w = ws.root.path
        let train = try HerdBinary.run(["train", "--workspace", w, "--model", "wnd", "--spec", "recsys2021", "--epochs", "1", "--batch-size", "512", "--json"])
        XCTAssertTrue(train.succeeded, train.transcript)
        let summary = try train.lastJSON()
        let version = try XCTUnwrap(summary["version"] as? Int, train.transcript)
        XCTAssertEqual(summary["name"] as? String, "wnd")
        XCTAssertEqual(summary["export"] as? String, ws.model("wnd", version: version).path)
        XCTAssertEqual(summary["valid_rows"] as? Int, testRows)
        XCTAssertEqual(ws.latestVersion(of: "wnd"), version)
        let export = try ModelExport.load(from: ws.model("wnd", version: version))
        guard case .table(let pipeline, let spec) = export.featureState else { return XCTFail("\(export.featureState)") }
        XCTAssertNotNil(pipeline, "the workspace's fitted pipeline is exported")
        XCTAssertEqual(spec.dense, ["len_hashtags", "len_domains", "len_links"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: ws.model("wnd").appendingPathComponent("checkpoints").path))

        // evaluate: the current version on W/features/test.herdtable, the same metrics as training's validation.
        let evaluate = try HerdBinary.run(["evaluate", "--workspace", w, "--name", "wnd", "--json"])
        XCTAssertTrue(evaluate.succeeded, evaluate.transcript)
        let m = try evaluate.lastJSON()
        XCTAssertEqual(m["rows"] as? Int, testRows)
        XCTAssertEqual(try XCTUnwrap(m["auc"] as? Double), try XCTUnwrap(summary["auc"] as? Double), accuracy: 1e-6)
        // … also by export directory and table path, through the `model` subcommand.
        let byPath = try HerdBinary.run(["evaluate", "model", "--model", ws.model("wnd", version: version).path, "--data", ws.table("test").path, "--json"])
        XCTAssertTrue(byPath.succeeded, byPath.transcript)
        XCTAssertEqual(try byPath.lastJSON()["auc"] as? Double, m["auc"] as? Double)
        // … and on the raw test rows, encoded by the exported pipeline.
        let raw = try HerdBinary.run(["evaluate", "--model", ws.model("wnd", version: version).path, "--data", ws.data.appendingPathComponent("test.txt").path,
                                      "--schema", ws.data.appendingPathComponent("schema.json").path, "--json"])
        XCTAssertTrue(raw.succeeded, raw.transcript)
        XCTAssertEqual(try raw.lastJSON()["auc"] as? Double, m["auc"] as? Double)
        XCTAssertEqual(try raw.lastJSON()["rows"] as? Int, testRows)

        // predict: one probability per test row.
        let out = ws.root.appendingPathComponent("p.txt").path
        let predict = try HerdBinary.run(["predict", "--workspace", w, "--name", "wnd", "--out", out])
        XCTAssertTrue(predict.succeeded, predict.transcript)
        let p = try CLIFixtures.lines(out).map { try XCTUnwrap(Double($0)) }
        XCTAssertEqual(p.count, testRows)
        XCTAssertTrue(p.allSatisfy { $0 > 0 && $0 < 1 })

        // A second run under another name is version 1 of that name; resume flags work the same.
        let again = try HerdBinary.run(["train", "--workspace", w, "--model", "wnd", "--spec", "examples/recsys2021/wnd.json".relativeToPackage,
                                        "--name", "wnd-small", "--deep-mlp", "16-1", "--max-steps", "1", "--json"])
        XCTAssertTrue(again.succeeded, again.transcript)
        XCTAssertEqual(try again.lastJSON()["version"] as? Int, 1)
        XCTAssertEqual(ws.latestVersion(of: "wnd-small"), 1)
    }

    func testTwoTowerPredictWritesUnitEmbeddingsKeyedByTheTables() throws {
        let (ws, _, users, items) = try Self.workspace()
        let w = ws.root.path
        let train = try HerdBinary.run(["train", "--workspace", w, "--model", "twotower", "--spec", "recsys2021", "--epochs", "1", "--batch-size", "512", "--json"])
        XCTAssertTrue(train.succeeded, train.transcript)
        XCTAssertEqual(try train.lastJSON()["name"] as? String, "twotower")
        let predict = try HerdBinary.run(["predict", "--workspace", w, "--name", "twotower", "--json"])
        XCTAssertTrue(predict.succeeded, predict.transcript)
        let summary = try predict.lastJSON()
        XCTAssertEqual(summary["users"] as? Int, users.count)
        XCTAssertEqual(summary["items"] as? Int, items.count)
        for (side, keys, key) in [("user", users, "enaging_user_id"), ("item", items, "tweet_id")] {
            let file = try SafeTensorsFile(url: ws.embeddingTable(side))
            XCTAssertEqual(try file.int64s("ids"), keys, side)
            let e = try file.tensor("embeddings")
            XCTAssertEqual(e.shape, [keys.count, 128], side)
            for r in 0..<keys.count {
                let norm = (0..<128).reduce(Float(0)) { $0 + e[r * 128 + $1] * e[r * 128 + $1] }
                XCTAssertEqual(norm, 1, accuracy: 1e-4, "\(side) row \(r)")
            }
            XCTAssertEqual(file.metadata["key_column"], key)
            XCTAssertEqual(file.metadata["model"], "twotower")
            XCTAssertEqual(file.metadata["version"], String(ws.latestVersion(of: "twotower")!))
        }
    }

    func testTableTrainingErrorsAreClear() throws {
        let (ws, _, _, _) = try Self.workspace()
        let w = ws.root.path
        let spec = ws.root.appendingPathComponent("bad-spec.json").path
        try #"{"model": "wnd", "labels": ["like"], "embed_cols": ["enaging_user_id", "no_such_column"]}"#.write(toFile: spec, atomically: true, encoding: .utf8)
        let unknown = try HerdBinary.run(["train", "--workspace", w, "--model", "wnd", "--spec", spec, "--name", "bad"])
        XCTAssertFalse(unknown.succeeded)
        XCTAssertTrue(unknown.stderr.contains("embed_cols: no column \"no_such_column\"") && unknown.stderr.contains("its columns: ") && unknown.stderr.contains("len_hashtags"), unknown.transcript)
        XCTAssertEqual(unknown.crashSigns, [])
        XCTAssertNil(ws.latestVersion(of: "bad"))

        let empty = try CLIFixtures.scratch("tabletrain-empty").path
        let missing = try HerdBinary.run(["train", "--workspace", empty, "--model", "twotower", "--spec", "recsys2021"])
        XCTAssertFalse(missing.succeeded)
        XCTAssertTrue(missing.stderr.contains("train.herdtable is missing") && missing.stderr.contains("herd preprocess"), missing.transcript)

        let wrong = try HerdBinary.run(["train", "--workspace", w, "--model", "wnd", "--spec", "examples/recsys2021/two_tower.json".relativeToPackage])
        XCTAssertFalse(wrong.succeeded)
        XCTAssertTrue(wrong.stderr.contains("describes a twotower model"), wrong.transcript)

        let noModel = try HerdBinary.run(["evaluate", "--workspace", w, "--name", "never-trained"])
        XCTAssertFalse(noModel.succeeded)
        XCTAssertTrue(noModel.stderr.contains("no exported model 'never-trained'"), noModel.transcript)
        XCTAssertEqual(noModel.crashSigns, [])
    }
}

extension String {
    /// A path relative to the package root.
    var relativeToPackage: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(self).path
    }
}
