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

    /// A workspace as a user makes it: `herd generate recsys2021 --workspace W` and
    /// `herd preprocess recsys2021 --workspace W` (train/test/user/item tables, fitted pipeline,
    /// sizes.json).
    static func workspace() throws -> (Workspace, testRows: Int, users: [Int64], items: [Int64]) {
        lock.lock()
        defer { lock.unlock() }
        if let built { return built }
        let ws = Workspace(path: try CLIFixtures.scratch("tabletrain-ws").path)
        let gen = try HerdBinary.run(["generate", "recsys2021", "--rows", "3000", "--seed", "6", "--workspace", ws.root.path])
        guard gen.succeeded else { throw XCTSkip("herd generate failed: \(gen.transcript)") }
        let prep = try HerdBinary.run(["preprocess", "recsys2021", "--workspace", ws.root.path])
        guard prep.succeeded else { throw XCTSkip("herd preprocess recsys2021 failed: \(prep.transcript)") }
        let users = try TableFile.read(path: ws.table("user").path, columns: ["enaging_user_id"]).column("enaging_user_id").int64Values!
        let items = try TableFile.read(path: ws.table("item").path, columns: ["tweet_id"]).column("tweet_id").int64Values!
        built = (ws, try TableFile.read(path: ws.table("test").path, columns: ["label"]).rowCount, users, items)
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
        // The side tables' rows, then the unseen tables' (users/tweets not in the training index).
        var unseen: [String: [Int64]] = [:]
        for (side, key) in [("user", "enaging_user_id"), ("item", "tweet_id")] {
            unseen[side] = try XCTUnwrap(TableFile.read(path: ws.table("\(side)_unseen").path)[key + "_key"].int64Values)
        }
        XCTAssertEqual(summary["users"] as? Int, users.count + unseen["user"]!.count)
        XCTAssertEqual(summary["items"] as? Int, items.count + unseen["item"]!.count)
        XCTAssertEqual(summary["users_unseen"] as? Int, unseen["user"]!.count)
        for (side, known, key) in [("user", users, "enaging_user_id"), ("item", items, "tweet_id")] {
            let file = try SafeTensorsFile(url: ws.embeddingTable(side))
            let keys = known + unseen[side]!
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
