import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

/// The ops `herd preprocess recsys2021` added (hand-computed cases), the categorical sizes of a
/// fitted pipeline, and the built-in RecSys 2021 preprocessing on generated rows.
final class RecSys2021FeaturesTests: XCTestCase {
    func testMapEncodeUsesTheDictionaryAndTheDefault() throws {
        let t = try FeatureTable([("type", Column(strings: ["TopLevel", nil, "Quote", "Poll"])), ("n", Column(int64s: [1, 2, nil, 1]))])
        let out = try t.mapEncode(["type"], mapping: ["Quote": 1, "Retweet": 2, "TopLevel": 3]).mapEncode(["n"], mapping: ["1": 5], defaultID: 9)
        XCTAssertEqual(out["type"], Column(int64s: [3, 0, 1, 0]))
        XCTAssertEqual(out["n"], Column(int64s: [5, 9, 9, 5]))
        XCTAssertThrowsError(try FeatureTable([("x", Column(doubles: [1]))]).mapEncode(["x"], mapping: ["1": 1])) {
            XCTAssertTrue("\($0)".contains("'x'"), "\($0)")
        }
    }

    func testJoinListJoinsTheFirstElements() throws {
        let t = try FeatureTable([("media", Column(stringLists: [["Photo", "Photo", "Video"], [], nil, ["GIF"]]))])
        XCTAssertEqual(try t.joinList(["media"], separator: "_", limit: 2)["media"], Column(strings: ["Photo_Photo", "", "", "GIF"]))
        XCTAssertEqual(try t.joinList(["media"], separator: "+")["media"], Column(strings: ["Photo+Photo+Video", "", "", "GIF"]))
        XCTAssertThrowsError(try t.joinList(["media"], separator: "_", limit: 0))
    }

    func testKeepMostFrequentKeepsTheSmallestKnownId() throws {
        // Ids from a frequency-ordered index: 1 is the most frequent value.
        let t = try FeatureTable([("tags", Column(int64Lists: [[4, 2, 7], [0, 3], [0, 0], [], nil, [5]]))])
        XCTAssertEqual(try t.keepMostFrequent(["tags"])["tags"], Column(int64s: [2, 3, 0, 0, 0, 5]))
        XCTAssertEqual(try t.keepMostFrequent(["tags"], outColumns: ["top"])["top"], Column(int64s: [2, 3, 0, 0, 0, 5]))
        XCTAssertThrowsError(try FeatureTable([("s", Column(stringLists: [["a"]]))]).keepMostFrequent(["s"])) {
            XCTAssertTrue("\($0)".contains("categorify it first"), "\($0)")
        }
    }

    func testAnyOfFlagsRowsWithANonZeroValue() throws {
        let t = try FeatureTable([("a", Column(int64s: [0, 1, nil, 0])), ("b", Column(doubles: [0, 0, 2.5, nil]))])
        XCTAssertEqual(try t.anyOf(["a", "b"], outColumn: "label")["label"], Column(int64s: [0, 1, 1, 0]))
    }

    func testLatestPerKeyTakesTheLatestRowWithTiesToTheLaterRow() throws {
        let t = try FeatureTable([
            ("user", Column(strings: ["a", "b", "a", "a", "b", nil, "c", "c"])),
            ("time", Column(int64s: [5, 1, 9, 9, nil, 3, nil, nil])),
            ("v", Column(int64s: [0, 1, 2, 3, 4, 5, 6, 7])),
        ])
        let out = try t.latestPerKey(["user"], by: "time")
        // a: rows 0, 2, 3 → time 9 twice, the later row 3; b: a null time is earlier than 1 → row 1;
        // null user: its own key → row 5; c: only null times → the later row 7. Order of first appearance.
        XCTAssertEqual(out["v"], Column(int64s: [3, 1, 5, 7]))
        XCTAssertEqual(out["user"], Column(strings: ["a", "b", nil, "c"]))
        XCTAssertThrowsError(try t.latestPerKey(["user"], by: "nope"))
    }

    func testNewOpsRunFromPipelineJSONWithCheckedKeys() throws {
        let json = #"""
        {"steps": [
          {"op": "join_list", "columns": ["media"], "separator": "_", "limit": 2},
          {"op": "map_encode", "columns": ["media"], "mapping": {"": 0, "GIF": 1, "GIF_GIF": 2}, "default": 3},
          {"op": "categorify", "columns": ["tags"]},
          {"op": "keep_most_frequent", "columns": ["tags"], "out_columns": ["top_tag"]},
          {"op": "not_null", "columns": ["t1", "t2"], "out_columns": ["e1", "e2"]},
          {"op": "any", "columns": ["e1", "e2"], "out_column": "label"},
          {"op": "cut_bins", "columns": ["n"], "bins": [1, 10]},
          {"op": "cross_hash_encode", "columns": ["media", "top_tag"], "bins": 50, "name": "media_tag"}
        ]}
        """#
        let pipeline = try Pipeline.decode(json: try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)))
        let t = try FeatureTable([
            ("media", Column(stringLists: [["GIF", "GIF", "Photo"], nil, ["Photo"]])),
            ("tags", Column(stringLists: [["x", "y"], ["y"], ["z", "y"]])),
            ("t1", Column(int64s: [nil, 5, nil])), ("t2", Column(int64s: [nil, nil, 7])),
            ("n", Column(int64s: [0, 10, 3])),
        ])
        let (out, fitted) = try pipeline.fit(t)
        XCTAssertEqual(out["media"], Column(int64s: [2, 0, 3]))
        XCTAssertEqual(out["top_tag"], Column(int64s: [1, 1, 1]), "y (3 times) has id 1 and is in every row")
        XCTAssertEqual(out["label"], Column(int64s: [0, 1, 1]))
        XCTAssertEqual(try fitted.apply(t), out)
        XCTAssertEqual(fitted.categoricalSizes(in: out), ["media": 4, "tags": 4, "top_tag": 4, "n_bin": 3, "media_tag": 50])

        let dir = try TemporaryDirectory()
        try fitted.save(path: dir.file("fitted.json"))
        XCTAssertEqual(try FittedPipeline.load(path: dir.file("fitted.json")), fitted)

        for (bad, message) in [
            (#"{"op": "map_encode", "columns": ["a"], "mapping": {"x": -1}}"#, "mapping: expected integer ids >= 0"),
            (#"{"op": "map_encode", "columns": ["a"], "mapping": {}}"#, "mapping: expected a non-empty object"),
            (#"{"op": "join_list", "columns": ["a"]}"#, "separator: missing"),
            (#"{"op": "any", "columns": ["a"], "out_columns": ["b"]}"#, "out_column: missing"),
        ] {
            let steps = try JSONDecoder().decode(JSONValue.self, from: Data(#"{"steps": [\#(bad)]}"#.utf8))
            XCTAssertThrowsError(try Pipeline.decode(json: steps)) { XCTAssertTrue("\($0)".contains(message), "\($0) for \(bad)") }
        }
    }

    func testBuiltInPipelineEqualsTheExampleFileAndTakesOverrides() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try Pipeline.load(path: root.appendingPathComponent("examples/recsys2021/pipeline.json").path)
        XCTAssertEqual(try RecSys2021Features.pipeline(), file, "examples/recsys2021/pipeline.json and RecSys2021Features.pipelineJSON differ")
        let custom = try RecSys2021Features.pipeline(freqLimit: 5, crossBuckets: 77)
        XCTAssertTrue(custom.steps.contains { $0.args == .categorify([["engaged_with_user_id", "enaging_user_id"], ["hashtags"], ["present_domains"], ["present_links"]], 5) })
        XCTAssertTrue(custom.steps.contains { $0.args == .categorify([["language"], ["tweet_id"]], 1) }, "tweet_id and language keep every value")
        XCTAssertTrue(custom.steps.contains { $0.args == .cross(["present_media", "language"], 77, "present_media_language") })
        XCTAssertEqual(try RecSys2021Features.builtInSchema().columns.map(\.name), RecSys2021Schema.standard.columns.map(\.name))
    }

    func testPreprocessGeneratedRowsGivesUniqueSideTablesEncodedAsTrain() throws {
        let dir = try TemporaryDirectory()
        let oracle = try RecSys2021Generator(rows: 3000, seed: 7).write(to: dir.path, testFraction: 0.2)
        let reader = CSVReader(schema: try RecSys2021Features.builtInSchema())
        let f = try RecSys2021Features.preprocess(train: try reader.read(path: dir.file("train.txt")).table,
                                                  test: try reader.read(path: dir.file("test.txt")).table,
                                                  pipeline: try RecSys2021Features.pipeline())
        XCTAssertEqual(f.train.rowCount, oracle.trainRows)
        XCTAssertEqual(f.test.rowCount, oracle.testRows)
        let labels = try XCTUnwrap(f.train["label"].int64Values)
        XCTAssertEqual(Double(labels.reduce(0, +)) / Double(labels.count), oracle.trainPositiveRate, accuracy: 1e-9)
        XCTAssertEqual(f.users.names, RecSys2021Features.userColumns)
        XCTAssertEqual(f.items.names, RecSys2021Features.itemColumns)
        XCTAssertEqual(f.sizes["present_media"], 13)
        XCTAssertEqual(f.sizes["tweet_type"], 4)
        XCTAssertEqual(f.sizes["enaging_user_follower_count"], 8)
        XCTAssertEqual(f.sizes["present_media_language"], 600)
        XCTAssertEqual(f.sizes["enaging_user_id"], f.sizes["engaged_with_user_id"])
        for (table, key) in [(f.users, RecSys2021Features.userKey), (f.items, RecSys2021Features.itemKey)] {
            let keys = try XCTUnwrap(table[key].int64Values)
            XCTAssertGreaterThan(keys.count, 0)
            XCTAssertEqual(Set(keys).count, keys.count, "\(key) is unique")
            XCTAssertFalse(keys.contains(0), "unknown \(key) left out")
        }
        // Every user row equals that user's latest train/test row in the same columns.
        let both = try f.train.select(RecSys2021Features.userColumns + ["tweet_timestamp"])
            .union(try f.test.select(RecSys2021Features.userColumns + ["tweet_timestamp"]))
        var latest: [Int64: (Int64, [Value])] = [:]
        let ids = both["enaging_user_id"].int64Values!, times = both["tweet_timestamp"].int64Values!
        for r in 0..<both.rowCount where ids[r] != 0 && (latest[ids[r]].map { times[r] >= $0.0 } ?? true) {
            latest[ids[r]] = (times[r], Array(both.row(r).prefix(RecSys2021Features.userColumns.count)))
        }
        XCTAssertEqual(latest.count, f.users.rowCount)
        for r in 0..<f.users.rowCount {
            XCTAssertEqual(f.users.row(r), latest[f.users["enaging_user_id"].int64Values![r]]?.1, "user row \(r)")
        }
        for (name, size) in f.sizes {
            let c = f.train[name]
            let maxID = c.int64Values?.max() ?? c.listParts.flatMap { if case .int64(let v) = $0.1 { return v.max() } else { return nil } } ?? 0
            XCTAssertLessThan(maxID, Int64(size), name)
        }
    }
}
