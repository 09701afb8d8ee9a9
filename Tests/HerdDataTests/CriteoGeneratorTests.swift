import Foundation
import HerdData
import XCTest

final class CriteoGeneratorTests: XCTestCase {
    func testDeterministicBytesAndRealisticShape() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory()
        let oracle = try CriteoGenerator(rows: 20000, seed: 3).write(to: a.path, testFraction: 0.25)
        let again = try CriteoGenerator(rows: 20000, seed: 3).write(to: b.path, testFraction: 0.25)
        XCTAssertEqual(oracle, again)
        for name in ["train.txt", "test.txt", "oracle.json"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a.file(name))),
                           try Data(contentsOf: URL(fileURLWithPath: b.file(name))), name)
        }
        let other = try TemporaryDirectory()
        try CriteoGenerator(rows: 20000, seed: 4).write(to: other.path, testFraction: 0.25)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: a.file("train.txt"))),
                          try Data(contentsOf: URL(fileURLWithPath: other.file("train.txt"))))

        XCTAssertEqual(oracle.trainRows, 15000)
        XCTAssertEqual(oracle.testRows, 5000)
        XCTAssertEqual(oracle.seed, 3)
        XCTAssertGreaterThan(oracle.positiveRate, 0.2)
        XCTAssertLessThan(oracle.positiveRate, 0.3)
        XCTAssertGreaterThan(oracle.testAUC, 0.7)
        XCTAssertLessThan(oracle.testAUC, 0.95)
        XCTAssertLessThan(oracle.testLogloss, oracle.testLoglossBaseline)
        // Pair interactions carry real signal: main effects alone rank worse.
        XCTAssertLessThan(oracle.testAUCWithoutInteractions, oracle.testAUC - 0.01)
        XCTAssertGreaterThan(oracle.testAUCWithoutInteractions, 0.6)

        // The files parse as Kaggle TSV and look like click logs.
        let (train, summary) = try CriteoReader(path: a.file("train.txt")).readAll()
        XCTAssertEqual(summary.format, .tsv)
        XCTAssertEqual(train.count, 15000)
        let positives = train.labels.reduce(0, +)
        XCTAssertEqual(Double(positives) / 15000, oracle.trainPositiveRate, accuracy: 1e-9)
        let denseMissing = train.dense.filter(\.isNaN).count
        XCTAssertGreaterThan(denseMissing, train.dense.count / 20)
        XCTAssertTrue(train.dense.contains { $0 < 0 })
        let catsMissing = train.categorical.filter { $0 == RawChunk.missing }.count
        XCTAssertGreaterThan(catsMissing, train.categorical.count / 50)
        // Varied cardinalities: a small column and a large one.
        let distinct = (0..<26).map { c in Set((0..<train.count).map { train.categoricalValue(row: $0, column: c) }).count }
        XCTAssertLessThanOrEqual(distinct[19], 5)  // C20: 4 values + missing
        XCTAssertGreaterThan(distinct[2], 1000)    // C3: large, Zipf
        XCTAssertEqual(oracle.cardinalities.count, 26)
    }

    func testOracleAUCIsExact() {
        XCTAssertEqual(CriteoOracle.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [false, false, true, true]), 0.75)
        XCTAssertEqual(CriteoOracle.auc(scores: [0.5, 0.5], labels: [false, true]), 0.5)
        XCTAssertTrue(CriteoOracle.auc(scores: [0.5], labels: [true]).isNaN)
    }
}
