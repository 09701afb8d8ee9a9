import Foundation
import HerdData
import HerdFeatures
import HerdServing
import HerdTraining
import XCTest

/// The transport-free parts behind the admin and TF-Serving routes: Criteo rows → batch, raw ↔
/// encoded ids, adding items to a live index and store.
final class ServingRequestTests: XCTestCase {
    // MARK: Criteo rows

    func testCriteoRowsAreTransformedLikeTheFileReader() throws {
        var state = FeatureState.hashing(tableSize: 1000)
        state.columns[3] = .vocabulary(Vocabulary(values: [0x68fd_1e64, 0x80e2_6c9b], freqLimit: 1))
        var row: [String: Any] = ["label": 1, "I1": 5, "I2": "260.0", "I3": -3, "I4": NSNull(), "C1": "68fd1e64", "C2": "", "C3": 255,
                                  "C4": "80E26C9B", "C5": NSNull()]
        row["I13"] = 0.5
        let body = try JSONSerialization.data(withJSONObject: ["instances": [row, ["I1": 1]]])
        let (batch, columnar) = try PredictRequest.criteoBatch(body: body, state: state)
        XCTAssertFalse(columnar)
        XCTAssertEqual(batch.count, 2)
        // Dense: log(max(x, 0) + 1), missing → 0.
        let d = batch.dense
        XCTAssertEqual(d[0], log1p(5), accuracy: 1e-6)
        XCTAssertEqual(d[1], log1p(260), accuracy: 1e-5)
        XCTAssertEqual(d[2], 0)
        XCTAssertEqual(d[3], 0)
        XCTAssertEqual(d[12], log1p(0.5), accuracy: 1e-6)
        XCTAssertEqual(d[13], log1p(1), accuracy: 1e-6)
        // Sparse, one-hot, feature-major: hashing = raw % size (empty → 0), vocabulary as fitted.
        let ids = batch.sparse.ids
        XCTAssertEqual(ids[0 * 2 + 0], Int32(0x68fd_1e64 % 1000))
        XCTAssertEqual(ids[1 * 2 + 0], 0)
        XCTAssertEqual(ids[2 * 2 + 0], 255)
        XCTAssertEqual(ids[3 * 2 + 0], state.columns[3].id(for: 0x80e2_6c9b))
        XCTAssertEqual(ids[3 * 2 + 1], state.columns[3].id(for: RawChunk.missing))
        // The same rows built by hand through the reader's path give the same batch.
        var dense = [Float](repeating: .nan, count: 2 * 13)
        dense[0] = 5; dense[1] = 260; dense[2] = -3; dense[12] = 0.5; dense[13] = 1
        var cats = [UInt64](repeating: RawChunk.missing, count: 2 * 26)
        cats[0] = 0x68fd_1e64; cats[2] = 255; cats[3] = 0x80e2_6c9b
        let expected = state.transform(RawChunk(labels: [], dense: dense, categorical: cats, labelled: false))
        XCTAssertEqual(batch.dense.array, expected.dense.array)
        XCTAssertEqual(batch.sparse, expected.sparse)

        // Columnar gives the same batch.
        let columns: [String: Any] = ["I1": [5, 1], "I2": ["260.0", NSNull()], "I3": [-3, NSNull()], "I13": [0.5, NSNull()],
                                      "C1": ["68fd1e64", ""], "C3": [255, NSNull()], "C4": ["80E26C9B", NSNull()]]
        let (c, isColumnar) = try PredictRequest.criteoBatch(body: try JSONSerialization.data(withJSONObject: ["inputs": columns]), state: state)
        XCTAssertTrue(isColumnar)
        XCTAssertEqual(c.dense.array, expected.dense.array)
        XCTAssertEqual(c.sparse, expected.sparse)
    }

    func testBadCriteoRowsAreRefusedWithTheColumn() {
        let state = FeatureState.hashing(tableSize: 10)
        for (row, mention) in [(#"{"instances": [{"C1": "xyz"}]}"#, "C1"), (#"{"instances": [{"C2": "123456789"}]}"#, "C2"),
                               (#"{"instances": [{"C3": "+1f"}]}"#, "C3"), (#"{"instances": [{"C4": -1}]}"#, "C4"),
                               (#"{"instances": [{"I1": "abc"}]}"#, "I1"), (#"{"instances": [{"I2": [1]}]}"#, "I2"),
                               (#"{"instances": [{"C27": "1"}]}"#, "C27"), (#"{"instances": []}"#, "no rows"), ("[1]", "JSON object")] {
            XCTAssertThrowsError(try PredictRequest.criteoBatch(body: Data(row.utf8), state: state), row) { e in
                guard case RecommenderError.invalidArgument(let m) = e else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains(mention), "\(row): \(m)")
            }
        }
    }

    // MARK: Raw ids

    func testRawIDsMapThroughTheFittedIndex() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herd-rawids-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipelineFile = dir.appendingPathComponent("p.json")
        try #"{"steps": [{"op": "categorify", "columns": ["user", "item"]}]}"#.write(to: pipelineFile, atomically: true, encoding: .utf8)
        let table = try FeatureTable([("user", Column(strings: ["AB12", "CD34", "AB12", "EF56"])), ("item", Column(strings: ["x", "y", "z", "x"]))])
        let (encoded, fitted) = try Pipeline.load(path: pipelineFile.path).fit(table)
        let ids = RawIDs(pipeline: fitted, userKey: "user", itemKey: "item")
        XCTAssertTrue(ids.mapsUsers)
        let users = try XCTUnwrap(encoded["user"].int64Values), items = try XCTUnwrap(encoded["item"].int64Values)
        for (r, raw) in ["AB12", "CD34", "AB12", "EF56"].enumerated() {
            XCTAssertEqual(ids.userID(raw: raw), users[r])
            XCTAssertEqual(ids.rawUser(users[r]), raw)
        }
        for (r, raw) in ["x", "y", "z", "x"].enumerated() { XCTAssertEqual(ids.rawItem(items[r]), raw) }
        XCTAssertEqual(ids.userID(raw: "ZZ99"), 0)
        XCTAssertNil(ids.rawItem(0))
        XCTAssertNil(ids.rawItem(99))
        // The shape of known ids: 4 characters from the ones they use.
        XCTAssertTrue(ids.looksLikeUserID("AB56"))
        XCTAssertFalse(ids.looksLikeUserID("AB5"))
        XCTAssertFalse(ids.looksLikeUserID("ab12"))
        XCTAssertFalse(ids.looksLikeUserID("AB1Z"))
    }

    // MARK: Adding items

    func testAddedItemsAreSearchableAndHaveTheirRows() throws {
        let existing = try FeatureTable([("item_id", Column(int64s: [1, 2])), ("genre", Column(int64s: [4, 5])),
                                         ("score", Column(doubles: [0.5, 0.25])), ("tags", Column(int64Lists: [[1], [2, 3]]))])
        let schema = try FeatureSchema(table: existing, keyColumn: "item_id")
        let index = try makeIndex(spec: "Flat", dimension: 3, metric: .innerProduct)
        try index.add(ids: [1, 2], vectors: [1, 0, 0, 0, 1, 0])
        let store = try makeFeatureStore(spec: "embedded")
        try store.put(existing, kind: .item, keyColumn: "item_id")

        let body = #"{"items": [{"id": 7, "embedding": [0, 0, 1], "features": {"genre": 9, "tags": [4, 5]}}, {"id": 8, "embedding": [0, 0.6, 0.8]}]}"#
        let items = try ItemsUpdate.parse(Data(body.utf8), dimension: 3, schema: schema)
        XCTAssertEqual(items, [NewItem(id: 7, embedding: [0, 0, 1], features: ["genre": .int(9), "tags": .list([.int(4), .int(5)])]),
                               NewItem(id: 8, embedding: [0, 0.6, 0.8])])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("herd-items-\(UUID().uuidString).index")
        defer { try? FileManager.default.removeItem(at: file) }
        try ItemsUpdate.add(items, index: index, store: store, schema: schema, indexFile: file)

        let (ids, _) = try index.search([0, 0, 1], k: 2)
        XCTAssertEqual(ids, [7, 8])
        XCTAssertEqual(try loadIndex(from: file).count, 4)
        let rows = try store.get(kind: .item, ids: [7, 8, 1])
        XCTAssertEqual(rows.rows[0], [.int(7), .int(9), .null, .list([.int(4), .int(5)])])
        XCTAssertNil(rows.rows[1], "an item without features gets no row")
        XCTAssertEqual(rows.rows[2], [.int(1), .int(4), .double(0.5), .list([.int(1)])])
    }

    func testBadItemBodiesAreRefused() {
        let schema = try! FeatureSchema(table: try! FeatureTable([("item_id", Column(int64s: [1])), ("genre", Column(int64s: [2]))]), keyColumn: "item_id")
        for (body, mention) in [("{}", "the body must be"), (#"{"items": []}"#, "no items"),
                                (#"{"items": [{"id": 0, "embedding": [1, 2]}]}"#, "positive integer"),
                                (#"{"items": [{"id": 3, "embedding": [1]}]}"#, "2 numbers"),
                                (#"{"items": [{"id": 3, "embedding": [1, "a"]}]}"#, "finite numbers"),
                                (#"{"items": [{"id": 3, "embedding": [1, 2]}, {"id": 3, "embedding": [1, 2]}]}"#, "twice"),
                                (#"{"items": [{"id": 3, "embedding": [1, 2], "features": {"nope": 1}}]}"#, "unknown column 'nope'"),
                                (#"{"items": [{"id": 3, "embedding": [1, 2], "features": {"genre": 1.5}}]}"#, "genre"),
                                (#"{"items": [{"id": 3, "embedding": [1, 2], "features": {"item_id": 4}}]}"#, "differs")] {
            XCTAssertThrowsError(try ItemsUpdate.parse(Data(body.utf8), dimension: 2, schema: schema), body) { e in
                guard case RecommenderError.invalidArgument(let m) = e else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains(mention), "\(body): \(m)")
            }
        }
    }
}
