import Foundation
@testable import HerdFeatures
import XCTest

final class PipelineTests: XCTestCase {
    let pipelineJSON = """
    {"steps": [
      {"op": "fillna", "columns": ["followers"], "value": 0},
      {"op": "categorify", "columns": [["engaged_with_user_id", "enaging_user_id"], "tokens"], "freq_limit": 2},
      {"op": "cut_bins", "columns": ["followers"], "bins": [1, 100, 1000], "out_columns": ["followers_bin"], "drop": false},
      {"op": "cut_bins", "columns": ["followers"], "bins": 2, "out_columns": ["followers_half"], "drop": false},
      {"op": "log", "columns": ["followers"]},
      {"op": "min_max_scale", "columns": ["followers"]},
      {"op": "cross_hash_encode", "columns": ["media", "language"], "bins": 600},
      {"op": "hash_encode", "columns": ["language"], "bins": 50},
      {"op": "count_encode", "columns": ["media"]},
      {"op": "target_encode", "columns": ["language"], "targets": ["followers_bin"], "smooth": 1, "kfold": 1},
      {"op": "drop", "columns": ["media"]}
    ]}
    """

    func table(_ rows: [(String?, String?, [String]?, Int64?, String, String)]) throws -> FeatureTable {
        try FeatureTable([
            ("engaged_with_user_id", Column(strings: rows.map(\.0))),
            ("enaging_user_id", Column(strings: rows.map(\.1))),
            ("tokens", Column(stringLists: rows.map(\.2))),
            ("followers", Column(int64s: rows.map(\.3))),
            ("media", Column(strings: rows.map(\.4))),
            ("language", Column(strings: rows.map(\.5))),
        ])
    }

    func testFitSaveLoadApplyGivesTheSameIds() throws {
        let dir = try TemporaryDirectory()
        let train = try table([
            ("u1", "u2", ["t1", "t2"], 5, "Photo", "en"),
            ("u2", "u3", ["t1"], nil, "Video", "fr"),
            ("u3", "u1", [], 2000, "Photo", "en"),
            ("u4", "u2", ["t2", "t3"], 150, "", "es"),
        ])
        let path = try dir.write("p.json", pipelineJSON)
        let pipeline = try Pipeline.load(path: path)
        XCTAssertEqual(pipeline.steps.map(\.op.rawValue), ["fillna", "categorify", "cut_bins", "cut_bins", "log", "min_max_scale", "cross_hash_encode", "hash_encode", "count_encode", "target_encode", "drop"])
        let (out, fitted) = try pipeline.fit(train)
        // users: u2 ×3, u1 ×2, u3 ×2, u4 ×1 (dropped by freq_limit 2) → u2=1, u1=2, u3=3.
        XCTAssertEqual(out["engaged_with_user_id"].int64Values, [2, 1, 3, 0])
        XCTAssertEqual(out["enaging_user_id"].int64Values, [1, 3, 2, 1])
        XCTAssertEqual(out["tokens"].values, [[1, 2], [1], [], [2, 0]].map { .list($0.map { .int($0) }) })
        XCTAssertEqual(out["followers_bin"].int64Values, [1, 0, 3, 2])
        // 2 equal-width bins over [0, 2000]: edges 0, 1000, 2000 → 5 → 1, 0 → 1, 2000 → 3, 150 → 1.
        XCTAssertEqual(out["followers_half"].int64Values, [1, 1, 3, 1])
        XCTAssertEqual(out["media_count"].int64Values, [2, 1, 2, 1])
        XCTAssertEqual(out.names, ["engaged_with_user_id", "enaging_user_id", "tokens", "followers", "language", "followers_bin", "followers_half", "crossed_media_language", "media_count", "language_te_followers_bin"])
        // language en: bins 1, 3; fr: 0; es: 2; mean 1.5 → en (4 + 1.5) / 3.
        XCTAssertEqual(out["language_te_followers_bin"].doubleValues!, [5.5 / 3, 1.5 / 2, 5.5 / 3, 3.5 / 2], accuracy: 1e-12)
        XCTAssertEqual(out["followers"][2], .double(1))
        XCTAssertEqual(try fitted.apply(train), out)

        let fittedPath = dir.file("fitted.json")
        try fitted.save(path: fittedPath)
        let loaded = try FittedPipeline.load(path: fittedPath)
        XCTAssertEqual(loaded, fitted)
        // Another table: unknown users → 0, same raw values → same ids as at fit time.
        let test = try table([
            ("u3", "zz", ["t2", "new"], 5, "Photo", "en"),
            (nil, "u2", nil, 100_000, "GIF", "de"),
        ])
        let applied = try loaded.apply(test)
        XCTAssertEqual(applied["engaged_with_user_id"].int64Values, [3, 0])
        XCTAssertEqual(applied["enaging_user_id"].int64Values, [0, 1])
        XCTAssertEqual(applied["tokens"].values, [.list([.int(2), .int(0)]), .list([])])
        XCTAssertEqual(applied["followers"][0], out["followers"][0])  // same raw 5 → same scaled value
        XCTAssertEqual(applied["crossed_media_language"][0], out["crossed_media_language"][0])
        XCTAssertEqual(applied["media_count"].int64Values, [2, 0])
        XCTAssertEqual(applied["followers_half"].int64Values, [1, 3])  // fitted edges, not the new table's
        XCTAssertEqual(applied["language_te_followers_bin"].doubleValues!, [5.5 / 3, 1.5], accuracy: 1e-12)
        XCTAssertEqual(try fitted.apply(test), applied)
    }

    func testBadPipelinesGiveMessagesNamingStepAndKey() throws {
        let dir = try TemporaryDirectory()
        func message(_ json: String) -> String {
            do {
                let p = try Pipeline.load(path: try dir.write("bad.json", json))
                _ = try p.fit(try table([("u1", "u2", ["t"], 1, "Photo", "en")]))
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(message(#"{"steps":[{"op":"fillna","value":0},{"op":"categorfy","columns":["a"]}]}"#),
                       "invalid pipeline: steps[1].op: unknown op 'categorfy' (known: select, drop, rename, cast, fillna, clip, log, min_max_scale, standard_scale, cut_bins, categorify, hash_encode, cross_hash_encode, not_null, list_length, count_encode, target_encode, map_encode, join_list, keep_most_frequent, any)")
        XCTAssertEqual(message(#"{"steps":[{"op":"categorify","columns":[["a","b"]],"freq_limit":"2"}]}"#),
                       #"invalid pipeline: steps[0] (categorify).freq_limit: expected an integer >= 1, got "2""#)
        XCTAssertEqual(message(#"{"steps":[{"op":"hash_encode","columns":["language"]}]}"#),
                       "invalid pipeline: steps[0] (hash_encode).bins: missing")
        XCTAssertEqual(message(#"{"steps":[{"op":"log","colums":["x"]}]}"#),
                       "invalid pipeline: steps[0] (log).columns: missing")
        XCTAssertEqual(message(#"{"steps":[{"op":"log","columns":["followers"],"base":2}]}"#),
                       "invalid pipeline: steps[0] (log): unknown key 'base'")
        XCTAssertEqual(message(#"{"steps":[{"op":"cut_bins","columns":["followers"],"bins":[10,1]}]}"#),
                       "invalid pipeline: steps[0] (cut_bins).bins: must be a bin count or a non-empty, strictly increasing list of numbers")
        XCTAssertEqual(message(#"{"steps":[{"op":"drop","columns":["media"]},{"op":"min_max_scale","columns":["followrs"]}]}"#),
                       "invalid pipeline: steps[1] (min_max_scale).columns: no column named 'followrs' (columns: engaged_with_user_id, enaging_user_id, tokens, followers, language)")
        XCTAssertEqual(message(#"{"steps":[{"op":"target_encode","columns":[["language","media"]],"targets":["label"]}]}"#),
                       "invalid pipeline: steps[0] (target_encode).targets: no column named 'label' (columns: engaged_with_user_id, enaging_user_id, tokens, followers, media, language)")
        XCTAssertEqual(message(#"{"steps":[{"op":"log","columns":["media"]}]}"#),
                       "invalid pipeline: steps[0] (log): column 'media' has type string, expected int64 or double")
        XCTAssertEqual(message(#"{"stepz":[]}"#), #"invalid pipeline: unknown top-level key 'stepz' (expected "steps")"#)
        XCTAssertEqual(message("{"), "invalid pipeline: \(dir.file("bad.json")): not valid JSON")
        // Applying a fitted pipeline to a table without a fitted column.
        let fitted = try Pipeline.load(path: try dir.write("ok.json", #"{"steps":[{"op":"categorify","columns":[["media","language"]]}]}"#))
            .fit(try table([("u1", "u2", ["t"], 1, "Photo", "en")])).1
        XCTAssertThrowsError(try fitted.apply(try FeatureTable([("media", Column(strings: ["x"]))]))) {
            XCTAssertEqual("\($0)", "invalid pipeline: steps[0] (categorify).columns: no column named 'language' (columns: media)")
        }
        // Fitted state that does not hold together.
        let dup = try dir.write("d.json", #"{"format_version":1,"steps":[{"op":"categorify","columns":["a"],"fitted":[{"columns":["a"],"values":["x","x"],"freq_limit":1}]}]}"#)
        XCTAssertThrowsError(try FittedPipeline.load(path: dup)) {
            XCTAssertEqual("\($0)", "invalid pipeline: steps[0].fitted: string index over [\"a\"] lists 'x' twice")
        }
        let noVersion = try dir.write("v.json", #"{"format_version":7,"steps":[]}"#)
        XCTAssertThrowsError(try FittedPipeline.load(path: noVersion)) {
            XCTAssertEqual("\($0)", "invalid pipeline: \(noVersion): format_version 7 is not supported (expected 1)")
        }
        // A fitted pipeline without its state.
        let unfitted = try dir.write("f.json", #"{"format_version":1,"steps":[{"op":"categorify","columns":["a"]}]}"#)
        XCTAssertThrowsError(try FittedPipeline.load(path: unfitted)) {
            XCTAssertEqual("\($0)", "invalid pipeline: steps[0].fitted: missing (was the pipeline fitted?)")
        }
    }
}
