import Foundation
import HerdData
import HerdTensor
import XCTest

final class CriteoDatasetTests: XCTestCase {
    func assertEqual(_ a: Batch, _ b: Batch, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.dense.shape, b.dense.shape, message, file: file, line: line)
        XCTAssertEqual(a.dense.array, b.dense.array, message, file: file, line: line)
        XCTAssertEqual(a.sparse, b.sparse, message, file: file, line: line)
        XCTAssertEqual(a.labels, b.labels, message, file: file, line: line)
    }

    func testCacheRoundTripEqualsDirectTransformAndIsReused() throws {
        let dir = try TemporaryDirectory()
        try CriteoGenerator(rows: 5000, seed: 11).write(to: dir.path, testFraction: 0.2)
        let path = dir.file("train.txt")
        let state = try FeatureState.fit(trainPath: path, config: .vocabulary(freqLimit: 2))
        let (raw, _) = try CriteoReader(path: path).readAll()
        let direct = state.transform(raw)

        let cacheDir = dir.file("cache")
        let data = try CriteoDataset.open(path: path, state: state, cacheDirectory: cacheDir, chunkBytes: 16 << 10)
        XCTAssertTrue(data.builtCache)
        XCTAssertEqual(data.rows, 4000)
        XCTAssertEqual(data.skippedRows, 0)
        assertEqual(data.batch(range: 0..<4000), direct)
        // In-order batches concatenate to the whole set; the last one is partial.
        let batches = Array(data.batches(size: 1500))
        XCTAssertEqual(batches.map(\.count), [1500, 1500, 1000])
        assertEqual(batches[1], direct.slice(1500..<3000))
        let memory = MemoryBatchSource(raw: raw, state: state)
        assertEqual(memory.batch(at: 2, size: 1500, seed: nil, epoch: 0), batches[2])

        // Second open reuses the cache (no text parsing); a different state builds another one.
        let again = try CriteoDataset.open(path: path, state: state, cacheDirectory: cacheDir)
        XCTAssertFalse(again.builtCache)
        assertEqual(again.batch(rows: [3999, 0, 17]), direct.slice(0..<4000).gatherRows([3999, 0, 17]))
        let hashed = try CriteoDataset.open(path: path, state: .hashing(tableSize: 1000), cacheDirectory: cacheDir)
        XCTAssertTrue(hashed.builtCache)
        XCTAssertNotEqual(hashed.cachePath, data.cachePath)
    }

    func testStaleCacheIsRebuiltAndSkipCountPersists() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("train.txt", sampleText(rows: 50))
        let state = FeatureState.hashing(tableSize: 64)
        XCTAssertTrue(try CriteoDataset.open(path: path, state: state).builtCache)  // cache next to the file
        XCTAssertFalse(try CriteoDataset.open(path: path, state: state).builtCache)

        // Same size, different contents and mtime: rebuilt.
        var lines = (0..<50).map { sampleRow($0) }
        lines[3] = lines[3].replacingOccurrences(of: "\t", with: ",")  // malformed: 1 field
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: path)
        XCTAssertThrowsError(try CriteoDataset.open(path: path, state: state)) {
            XCTAssertEqual("\($0)", "\(path):4: expected 40 fields, found 1")
        }
        let skipping = try CriteoDataset.open(path: path, state: state, onError: .skip)
        XCTAssertTrue(skipping.builtCache)
        XCTAssertEqual(skipping.rows, 49)
        XCTAssertEqual(skipping.skippedRows, 1)
        let reused = try CriteoDataset.open(path: path, state: state, onError: .skip)
        XCTAssertFalse(reused.builtCache)
        XCTAssertEqual(reused.skippedRows, 1)
        // Under .fail a cache with skipped rows is not trusted: the text is re-read and fails.
        XCTAssertThrowsError(try CriteoDataset.open(path: path, state: state, onError: .fail))

        // A corrupt cache file is rebuilt.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: skipping.cachePath))
        XCTAssertTrue(try CriteoDataset.open(path: path, state: state, onError: .skip).builtCache)
    }

    func testShuffledEpochIsADeterministicPermutation() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("train.txt", sampleText(rows: 1000))
        let data = try CriteoDataset.open(path: path, state: .hashing(tableSize: 1 << 30), cacheDirectory: dir.path)
        // C26 of row r is hex(r*100 + 25) → its hashed id identifies the row.
        func rowsOf(_ batch: Batch) -> [Int] { Array(batch.sparse.ids[(25 * batch.count)...]).map { (Int($0) - 25) / 100 } }

        let epoch0 = data.batches(size: 64, shuffle: 7, epoch: 0).flatMap(rowsOf)
        XCTAssertEqual(epoch0.count, 1000)
        XCTAssertEqual(epoch0.sorted(), Array(0..<1000))
        XCTAssertNotEqual(epoch0, Array(0..<1000))
        XCTAssertEqual(data.batches(size: 64, shuffle: 7, epoch: 0).flatMap(rowsOf), epoch0)
        let epoch1 = data.batches(size: 64, shuffle: 7, epoch: 1).flatMap(rowsOf)
        XCTAssertEqual(epoch1.sorted(), Array(0..<1000))
        XCTAssertNotEqual(epoch1, epoch0)
        XCTAssertNotEqual(data.batches(size: 64, shuffle: 8, epoch: 0).flatMap(rowsOf), epoch0)
        XCTAssertEqual(data.batches(size: 64).flatMap(rowsOf), Array(0..<1000))

        // Random access and resuming mid-epoch reproduce the same batches.
        let batches = Array(data.batches(size: 64, shuffle: 7, epoch: 0))
        XCTAssertEqual(batches.count, 16)
        XCTAssertEqual(batches.last!.count, 1000 - 15 * 64)
        assertEqualRows(rowsOf(data.batch(at: 9, size: 64, seed: 7, epoch: 0)), rowsOf(batches[9]))
        XCTAssertEqual(data.batches(size: 64, shuffle: 7, epoch: 0, startingAt: 10).flatMap(rowsOf), Array(epoch0[640...]))
    }

    func testUnlabelledFileAndMemorySourceAgreeWithCache() throws {
        let dir = try TemporaryDirectory()
        let text = (0..<300).map { sampleRow($0).split(separator: "\t", omittingEmptySubsequences: false).dropFirst().joined(separator: "\t") }
            .joined(separator: "\n") + "\n"
        let path = try dir.write("test.txt", text)
        let state = FeatureState.hashing(tableSize: 1000)
        let data = try CriteoDataset.open(path: path, state: state, chunkBytes: 1000)
        XCTAssertFalse(data.labelled)
        XCTAssertEqual(data.rows, 300)
        let memory = MemoryBatchSource(raw: try CriteoReader.parse(text: text).rows, state: state)
        for k in 0..<data.batchCount(size: 128) {
            let a = data.batch(at: k, size: 128, seed: 5, epoch: 2), b = memory.batch(at: k, size: 128, seed: 5, epoch: 2)
            XCTAssertEqual(a.labels, [])
            assertEqual(a, b, "batch \(k)")
        }
    }

    func testRowOrderIsABijectionForManySizes() {
        for rows in [1, 2, 3, 5, 16, 17, 1000, 4097] {
            let order = RowOrder(rows: rows, seed: 99, epoch: 3)
            XCTAssertEqual((0..<rows).map { order[$0] }.sorted(), Array(0..<rows), "rows \(rows)")
        }
        XCTAssertTrue(RowOrder.sequential(rows: 10).isSequential)
        // Block shuffle: a bijection, whole blocks stay together, the tail comes last.
        for (rows, k) in [(1000, 64), (1024, 64), (5, 8), (100, 1), (777, 100)] {
            let order = RowOrder(rows: rows, seed: 1, epoch: 0, blockRows: k)
            let visited = (0..<rows).map { order[$0] }
            XCTAssertEqual(visited.sorted(), Array(0..<rows), "rows \(rows) block \(k)")
            let full = rows / k
            for b in 0..<full {
                let blocks = Set(visited[(b * k)..<((b + 1) * k)].map { $0 / k })
                XCTAssertEqual(blocks.count, 1, "rows \(rows) block \(k)")
            }
            XCTAssertEqual(Set(visited[(full * k)...]), Set((full * k)..<rows))
            if full > 2 { XCTAssertNotEqual(visited, Array(0..<rows)) }
        }
        XCTAssertNotEqual((0..<1000).map { RowOrder(rows: 1000, seed: 1, epoch: 0, blockRows: 64)[$0] },
                          (0..<1000).map { RowOrder(rows: 1000, seed: 1, epoch: 1, blockRows: 64)[$0] })
    }

    private func assertEqualRows(_ a: [Int], _ b: [Int]) { XCTAssertEqual(a, b) }
}

extension Batch {
    /// Rows `indices` of this one-hot batch (test helper).
    func gatherRows(_ indices: [Int]) -> Batch {
        let parts = indices.map { slice($0..<($0 + 1)) }
        var dense: [Float] = [], labels: [Float] = []
        var ids = [Int32](repeating: 0, count: indices.count * sparse.features)
        for (b, part) in parts.enumerated() {
            dense += part.dense.array
            labels += part.labels
            for f in 0..<sparse.features { ids[f * indices.count + b] = part.sparse.ids[f] }
        }
        return Batch(
            dense: Tensor(shape: [indices.count, dense.count / max(indices.count, 1)], values: dense),
            sparse: KeyedJagged(oneHot: ids, features: sparse.features, batchSize: indices.count), labels: labels)
    }
}
