import Foundation
@testable import HerdCLI
import HerdFeatures
import HerdTensor
import HerdTraining
import XCTest

/// `herd preprocess movielens` and `herd evaluate retrieval`, run in-process through their
/// command structs (they are registered under their groups by the lead).
final class MovieLensCommandTests: XCTestCase {
    func writeTable(_ ws: Workspace, _ name: String, _ rows: [(Int64, Int64, Int64)]) throws {
        try TableFile.write(try FeatureTable([
            ("user_id", Column(int64s: rows.map(\.0))), ("item_id", Column(int64s: rows.map(\.1))), ("label", Column(int64s: rows.map(\.2))),
        ]), to: ws.table(name).path)
    }

    /// Items 11 [1 0], 12 [0 1], 13 [.7 .7], 14 [-1 0]; users 1 [1 0], 2 [0 1].
    func handWorkspace() throws -> Workspace {
        let ws = Workspace(path: try CLIFixtures.scratch("retrieval").path)
        try ws.create()
        try EmbeddingsFile(ids: [1, 2], embeddings: Tensor(shape: [2, 2], values: [1, 0, 0, 1]), metadata: ["key_column": "user_id"])
            .write(to: ws.embeddingTable("user"))
        try EmbeddingsFile(ids: [11, 12, 13, 14], embeddings: Tensor(shape: [4, 2], values: [1, 0, 0, 1, 0.7, 0.7, -1, 0]),
                           metadata: ["key_column": "item_id"]).write(to: ws.embeddingTable("item"))
        try writeTable(ws, "train", [(1, 11, 1), (2, 12, 1), (2, 11, 1), (1, 14, 0)])
        // Test positives: user 1 → 13, user 2 → 14, an unknown user (0) → 12; a negative row is ignored.
        try writeTable(ws, "test", [(1, 13, 1), (2, 14, 1), (0, 12, 1), (2, 11, 0)])
        return ws
    }

    func testRetrievalByHand() throws {
        let ws = try handWorkspace()
        let d1 = 1 / log2(3.0)
        // k = 1. Model: user 1 ranks 13 (.7) over 12 (0) with 11 and 14 excluded → hit; user 2
        // ranks 13 (.7) over 14 (0) → miss; the unknown user has no embedding → miss.
        // Popularity (training positives 11: 2, 12: 1, then 13, 14): user 1 → 12, user 2 → 13,
        // the unknown user → 11: all miss.
        var r = try RetrievalEvaluation.run(workspace: ws, k: 1)
        XCTAssertEqual(r.model.users, 3)
        XCTAssertEqual(r.usersWithoutEmbedding, 1)
        XCTAssertEqual(r.unknownPositives, 0)
        XCTAssertEqual(r.model.recall, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.model.ndcg, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.popularity.recall, 0)
        // k = 2. Model: user 1 hit at rank 0, user 2 hit at rank 1 → recall 2/3, ndcg (1 + d1)/3.
        // Popularity: [12 13], [13 14], [11 12] → every user hits at rank 1: recall 1, ndcg d1.
        r = try RetrievalEvaluation.run(workspace: ws, k: 2)
        XCTAssertEqual(r.model.recall, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.model.ndcg, (1 + d1) / 3, accuracy: 1e-12)
        XCTAssertEqual(r.popularity.recall, 1, accuracy: 1e-12)
        XCTAssertEqual(r.popularity.ndcg, d1, accuracy: 1e-12)
    }

    func testRetrievalErrors() throws {
        let ws = try handWorkspace()
        try FileManager.default.removeItem(at: ws.embeddingTable("item"))
        XCTAssertThrowsError(try RetrievalEvaluation.run(workspace: ws, k: 10)) {
            XCTAssertTrue("\($0)".contains("item.safetensors is missing: run `herd predict"), "\($0)")
        }
        try SafeTensors.write([SafeTensorsItem("ids", int64: [1, 1]), SafeTensorsItem("embeddings", Tensor(shape: [2, 2]))], to: ws.embeddingTable("item"))
        XCTAssertThrowsError(try RetrievalEvaluation.run(workspace: ws, k: 10)) {
            XCTAssertTrue("\($0)".contains("id 1 appears twice"), "\($0)")
        }
        try EmbeddingsFile(ids: [11], embeddings: Tensor(shape: [1, 3])).write(to: ws.embeddingTable("item"))
        XCTAssertThrowsError(try RetrievalEvaluation.run(workspace: ws, k: 10)) {
            XCTAssertTrue("\($0)".contains("must come from the same model"), "\($0)")
        }
        XCTAssertThrowsError(try EvaluateRetrieval.parse(["--workspace", ws.root.path, "--k", "0"]))
    }

    /// A RecBole-layout fixture (30 users, 40 items, 8 ratings each) preprocessed into a workspace.
    func preprocessedFixture(_ name: String, rng: inout SplitMix64) throws -> Workspace {
        let dir = try CLIFixtures.scratch(name)
        let data = dir.appendingPathComponent("ml").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        for u in 1...30 {
            for t in 0..<8 { inter += "\(u)\t\(1 + rng.next() % 40)\t\(1 + rng.next() % 5)\t\(1000 + 10 * t + Int(rng.next() % 5))\n" }
        }
        try inter.write(toFile: data + "/ml.inter", atomically: false, encoding: .utf8)
        try ("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
            + (1...30).map { "\($0)\t\(15 + $0)\t\($0 % 2 == 0 ? "F" : "M")\tjob\($0 % 4)\t\(10000 + 997 * $0)\n" }.joined())
            .write(toFile: data + "/ml.user", atomically: false, encoding: .utf8)
        try ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
            + (1...40).map { "\($0)\tFilm \($0)\t\(1950 + $0)\t\(MovieLens.genres[$0 % 19]) Drama\n" }.joined())
            .write(toFile: data + "/ml.item", atomically: false, encoding: .utf8)
        let ws = Workspace(path: dir.appendingPathComponent("ws").path)
        try PreprocessMovieLens.parse(["--input", data, "--workspace", ws.root.path, "--json"]).run()
        return ws
    }

    /// A RecBole-layout fixture → `preprocess movielens` → embeddings written from the encoded
    /// tables → `evaluate retrieval`: the files the workflow shares line up.
    func testPreprocessThenEvaluateRetrieval() throws {
        var rng = SplitMix64(seed: 3)
        let ws = try preprocessedFixture("movielens", rng: &rng)
        for name in ["train", "test", "user", "item"] { XCTAssertTrue(FileManager.default.fileExists(atPath: ws.table(name).path)) }
        let sizes = try JSONSerialization.jsonObject(with: Data(contentsOf: ws.sizes)) as? [String: Int]
        XCTAssertEqual(sizes?["age_bin"], 8)
        XCTAssertEqual(sizes?["gender"], 3)
        let users = try TableFile.read(path: ws.table("user").path)
        let items = try TableFile.read(path: ws.table("item").path)
        XCTAssertEqual(users.names, MovieLens.userColumns)
        XCTAssertEqual(users.rowCount, 30)
        XCTAssertEqual(sizes?["user_id"], 31)
        XCTAssertEqual(items.rowCount + 1, sizes?["item_id"])
        XCTAssertEqual(try FittedPipeline.load(path: ws.fittedPipeline.path).stringIndices.count, 6)
        XCTAssertEqual(try TableFile.read(path: ws.table("test").path).rowCount, 30)

        // Random unit embeddings keyed like the tables.
        func embed(_ t: FeatureTable, _ key: String) throws -> EmbeddingsFile {
            let ids = try t.column(key).int64Values!
            let e = Tensor(shape: [ids.count, 4], values: (0..<(ids.count * 4)).map { _ in rng.nextUniform() - 0.5 })
            return EmbeddingsFile(ids: ids, embeddings: e, metadata: ["key_column": key])
        }
        try embed(users, "user_id").write(to: ws.embeddingTable("user"))
        try embed(items, "item_id").write(to: ws.embeddingTable("item"))
        let r = try RetrievalEvaluation.run(workspace: ws, k: 10)
        let positives = try TableFile.read(path: ws.table("test").path).column("label").int64Values!.filter { $0 == 1 }.count
        XCTAssertEqual(r.model.users, positives)
        XCTAssertEqual(r.usersWithoutEmbedding, 0)
        XCTAssertEqual(r.items, items.rowCount)
        try EvaluateRetrieval.parse(["--workspace", ws.root.path, "--json"]).run()
    }

    /// `herd train` on the workspace with the example spec (in-batch softmax, logQ correction) and
    /// with sampled negatives (`--negatives`), then predict and evaluate retrieval.
    func testTwoTowerTrainingWithNegativesThroughTheCLI() throws {
        var rng = SplitMix64(seed: 5)
        let ws = try preprocessedFixture("movielens-tt", rng: &rng)
        let w = ws.root.path
        let softmax = try HerdBinary.run(["train", "--workspace", w, "--model", "twotower", "--spec", "examples/movielens/two_tower.json".relativeToPackage,
                                          "--epochs", "2", "--batch-size", "64", "--json"])
        XCTAssertTrue(softmax.succeeded, softmax.transcript)
        XCTAssertTrue(softmax.stderr.contains("0 uniform negatives per positive") && softmax.stderr.contains("corrected by log q(item)"), softmax.transcript)
        let bce = ws.root.appendingPathComponent("bce.json").path
        try String(contentsOfFile: "examples/movielens/two_tower.json".relativeToPackage, encoding: .utf8)
            .replacingOccurrences(of: "\"in_batch_softmax\"", with: "\"bce\"").replacingOccurrences(of: "\"logq_correction\": true", with: "\"logq_correction\": false")
            .write(toFile: bce, atomically: true, encoding: .utf8)
        let sampled = try HerdBinary.run(["train", "--workspace", w, "--model", "twotower", "--spec", bce, "--name", "tt-neg", "--negatives", "3",
                                          "--epochs", "2", "--batch-size", "64", "--json"])
        XCTAssertTrue(sampled.succeeded, sampled.transcript)
        let train = try TableFile.read(path: ws.table("train").path)
        let positives = try train.column("label").int64Values!.filter { $0 == 1 }.count
        XCTAssertTrue(sampled.stderr.contains("two-tower rows: \(positives) from the table (label-0 rows dropped), 3 uniform negatives"), sampled.transcript)
        XCTAssertEqual(try sampled.lastJSON()["rows"] as? Int, positives * 4)
        let predict = try HerdBinary.run(["predict", "--workspace", w, "--name", "tt-neg", "--json"])
        XCTAssertTrue(predict.succeeded, predict.transcript)
        let retrieval = try HerdBinary.run(["evaluate", "retrieval", "--workspace", w, "--json"])
        XCTAssertTrue(retrieval.succeeded, retrieval.transcript)
        XCTAssertNotNil(try retrieval.lastJSON()["recall@10"] as? Double)

        let wnd = try HerdBinary.run(["train", "--workspace", w, "--model", "wnd", "--spec", "examples/movielens/wnd.json".relativeToPackage, "--negatives", "2"])
        XCTAssertFalse(wnd.succeeded)
        XCTAssertTrue(wnd.stderr.contains("--negatives applies to --model twotower only"), wnd.transcript)
        XCTAssertEqual(wnd.crashSigns, [])
    }
}
