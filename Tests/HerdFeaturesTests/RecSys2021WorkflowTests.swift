import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

/// Generated RecSys 2021 files go through the reader with the generator's own schema.json and
/// through the example pipeline (Friesian's wnd_preprocess_recsys steps).
final class RecSys2021WorkflowTests: XCTestCase {
    func testGeneratedFilesReadWithTheirSchemaAndRunTheExamplePipeline() throws {
        let dir = try TemporaryDirectory()
        let oracle = try RecSys2021Generator(rows: 3000, seed: 5).write(to: dir.path, testFraction: 0.2)
        let schema = try CSVSchema.load(path: dir.file("schema.json"))
        let reader = CSVReader(schema: schema)
        let (train, summary) = try reader.read(path: dir.file("train.txt"))
        XCTAssertEqual(summary.rows, oracle.trainRows)
        XCTAssertEqual(summary.skippedRows, 0)
        XCTAssertEqual(train.columnCount, 24)
        XCTAssertEqual(try train.column("text_tokens").type, .int64List)
        XCTAssertEqual(try train.column("hashtags").type, .stringList)

        // The example pipeline lives in the repository; find it from this file.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let pipelinePath = root.appendingPathComponent("examples/recsys2021/pipeline.json").path
        guard FileManager.default.fileExists(atPath: pipelinePath) else { throw XCTSkip("examples/recsys2021/pipeline.json not found") }
        let pipeline = try Pipeline.load(path: pipelinePath)
        let (out, fitted) = try pipeline.fit(train)
        XCTAssertEqual(try fitted.apply(train), out, "applying the fitted pipeline reproduces the fit's output")
        let (test, _) = try reader.read(path: dir.file("test.txt"))
        let outTest = try fitted.apply(test)
        XCTAssertEqual(out.rowCount, oracle.trainRows)
        XCTAssertEqual(outTest.rowCount, oracle.testRows)
        // Labels derived from the engagement timestamps: any engagement at the oracle's rate.
        let labels = try ["reply", "retweet", "retweet_with_comment", "like"].map { try out.column($0) }
        var positives = 0
        for r in 0..<out.rowCount where labels.contains(where: { $0[r] == .int(1) }) { positives += 1 }
        XCTAssertEqual(Double(positives) / Double(out.rowCount), oracle.trainPositiveRate, accuracy: 1e-9)
    }
}

final class FeatureTableBatchTests: XCTestCase {
    func testBatchFollowsTheSpecWithNullsListsAndAnyLabel() throws {
        let t = try FeatureTable([
            ("user", Column(int64s: [1, nil, 2])),
            ("tags", Column(int64Lists: [[1, 3], nil, []])),
            ("x", Column(doubles: [0.5, nil, 2])),
            ("like", Column(int64s: [0, 1, 0])),
            ("reply", Column(int64s: [1, 0, nil])),
        ])
        let spec = try BatchSpec.infer(sparse: ["user", "tags"], dense: ["x"], labels: ["like", "reply"], tables: [t])
        XCTAssertEqual(spec.sparse.map(\.cardinality), [3, 4])
        let b = try t.batch(spec)
        XCTAssertEqual(b.dense.array, [0.5, 0, 2])
        XCTAssertEqual(b.labels, [1, 1, 0])
        XCTAssertEqual(Array(b.sparse.bag(feature: 0, row: 0)), [1])
        XCTAssertEqual(Array(b.sparse.bag(feature: 0, row: 1)), [])
        XCTAssertEqual(Array(b.sparse.bag(feature: 1, row: 0)), [1, 3])
        XCTAssertEqual(Array(b.sparse.bag(feature: 1, row: 2)), [])
        var small = spec
        small.sparse[1].cardinality = 3
        XCTAssertThrowsError(try t.batch(small)) { XCTAssertTrue("\($0)".contains("'tags' row 0: id 3 outside 0..<3"), "\($0)") }
        XCTAssertThrowsError(try BatchSpec.infer(sparse: ["x"], dense: [], labels: [], tables: [t])) { XCTAssertTrue("\($0)".contains("int64")) }
    }
}
