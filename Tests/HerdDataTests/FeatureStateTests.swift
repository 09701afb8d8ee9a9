import Foundation
import HerdData
import XCTest

final class FeatureStateTests: XCTestCase {
    /// Rows whose C1 is `c1[r]` (nil = empty) and C2 `c2[r]`; other columns fixed.
    func rows(c1: [String?], c2: [String?]) throws -> RawChunk {
        let text = zip(c1, c2).enumerated().map { r, pair in
            var dense = Array(repeating: "", count: 13)
            dense[0] = ["0", "-5", "", "1", "1000", "3.0", "7"][r % 7]
            var cats = Array(repeating: "1", count: 26)
            cats[0] = pair.0 ?? ""
            cats[1] = pair.1 ?? ""
            return tsvRow(label: String(r % 2), dense: dense, cats: cats)
        }.joined(separator: "\n")
        return try CriteoReader.parse(text: text).rows
    }

    func testVocabularyWithFrequencyLimitAndOOV() throws {
        // C1 counts: a:3, b:2, c:1, missing:1. C2 counts: 0f:2, 0e:2 (tie → smaller id first), 10:1.
        let train = try rows(
            c1: ["a", "b", "a", nil, "c", "b", "a"],
            c2: ["0f", "0e", "0f", "0e", "10", nil, nil])
        let state = try FeatureState.fit(rows: train, config: .vocabulary(freqLimit: 2))
        guard case .vocabulary(let v1) = state.columns[0], case .vocabulary(let v2) = state.columns[1] else {
            return XCTFail("expected vocabularies")
        }
        XCTAssertEqual(v1.values, [0xa, 0xb])
        XCTAssertEqual(v2.values, [0x0e, 0x0f])
        XCTAssertEqual(state.tableSizes[0], 4)
        XCTAssertEqual(state.tableSizes[1], 4)
        XCTAssertEqual(state.tableSizes[2], 3)  // C3 is always "1": missing, OOV, 0x1
        XCTAssertEqual(state.fittedRows, 7)

        let test = try rows(c1: ["a", "b", "c", nil, "dd"], c2: ["0e", "0f", "10", nil, "0e"])
        let batch = state.transform(test)
        XCTAssertEqual(batch.count, 5)
        XCTAssertEqual(Array(batch.sparse.ids[0..<5]), [2, 3, 1, 0, 1])  // C1: a, b, rare c → OOV, missing, unseen → OOV
        XCTAssertEqual(Array(batch.sparse.ids[5..<10]), [2, 3, 1, 0, 2])  // C2
        XCTAssertEqual(Array(batch.sparse.ids[10..<15]), [2, 2, 2, 2, 2])  // C3
        XCTAssertEqual(batch.sparse.features, 26)
        XCTAssertEqual(batch.sparse.offsets, (0...130).map { Int32($0) })
        XCTAssertEqual(batch.labels, [0, 1, 0, 1, 0])

        // freqLimit 1 keeps everything seen once.
        let all = try FeatureState.fit(rows: train, config: .vocabulary(freqLimit: 1))
        XCTAssertEqual(all.tableSizes[0], 5)
    }

    func testDenseTransform() throws {
        let raw = try rows(c1: Array(repeating: "a", count: 7), c2: Array(repeating: "b", count: 7))
        let batch = FeatureState.hashing(tableSize: 10).transform(raw)
        XCTAssertEqual(batch.dense.shape, [7, 13])
        let column0 = (0..<7).map { batch.dense[$0, 0] }
        let expected: [Float] = [0, 0, 0, log1p(1), log1p(1000), log1p(3), log1p(7)]  // "-5" clamps to 0, "" → 0
        XCTAssertEqual(maxAbs(column0, expected), 0, accuracy: 1e-6)
        XCTAssertEqual(batch.dense[0, 1], 0)  // missing
    }

    func testHashing() throws {
        let raw = try rows(c1: ["ff", nil, "64", "FFFFFFFF"], c2: ["1", "2", "3", "4"])
        let state = FeatureState.hashing(tableSize: 100)
        XCTAssertEqual(state.tableSizes, Array(repeating: 100, count: 26))
        let batch = state.transform(raw)
        XCTAssertEqual(Array(batch.sparse.ids[0..<4]), [255 % 100, 0, 0, Int32(0xFFFF_FFFF as UInt64 % 100)])
        XCTAssertEqual(Array(batch.sparse.ids[4..<8]), [1, 2, 3, 4])

        let perColumn = FeatureConfig(columns: [.hashing(tableSize: 7)] + Array(repeating: .vocabulary(freqLimit: 1), count: 25))
        let mixed = try FeatureState.fit(rows: raw, config: perColumn)
        XCTAssertEqual(mixed.tableSizes[0], 7)
        XCTAssertEqual(mixed.tableSizes[1], 6)
        XCTAssertThrowsError(try FeatureState.fit(rows: raw, config: .hashing(tableSize: 0))) {
            XCTAssertEqual("\($0)", "C1: hashing table size must be in 1…2147483647, got 0")
        }
    }

    func testJSONRoundTripAndFingerprint() throws {
        let dir = try TemporaryDirectory()
        let raw = try rows(c1: ["a", "b", "a"], c2: ["c", nil, "c"])
        let state = try FeatureState.fit(rows: raw, config: .vocabulary(freqLimit: 1))
        let path = dir.file("features.json")
        try state.save(to: path)
        let loaded = try FeatureState.load(from: path)
        XCTAssertEqual(loaded, state)
        XCTAssertEqual(loaded.fingerprint, state.fingerprint)
        XCTAssertEqual(loaded.transform(raw).sparse, state.transform(raw).sparse)
        XCTAssertNotEqual(FeatureState.hashing(tableSize: 10).fingerprint, FeatureState.hashing(tableSize: 11).fingerprint)
        XCTAssertNotEqual(state.fingerprint, try FeatureState.fit(rows: raw, config: .vocabulary(freqLimit: 2)).fingerprint)

        let bad = try dir.write("bad.json", "{\"version\": 1}")
        XCTAssertThrowsError(try FeatureState.load(from: bad)) {
            XCTAssertTrue("\($0)".hasPrefix("invalid feature state: \(bad) is not a valid feature state JSON"), "\($0)")
        }
    }

    func testFitFromFileEqualsInMemoryFit() throws {
        let dir = try TemporaryDirectory()
        let oracle = try CriteoGenerator(rows: 3000, seed: 5).write(to: dir.path, testFraction: 0.1)
        XCTAssertEqual(oracle.trainRows, 2700)
        let path = dir.file("train.txt")
        let fromFile = try FeatureState.fit(trainPath: path, config: .vocabulary(freqLimit: 2), chunkBytes: 4096)
        let (raw, _) = try CriteoReader(path: path).readAll()
        let inMemory = try FeatureState.fit(rows: raw, config: .vocabulary(freqLimit: 2))
        XCTAssertEqual(fromFile, inMemory)
        XCTAssertEqual(fromFile.fittedRows, 2700)
    }

    private func maxAbs(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
}
