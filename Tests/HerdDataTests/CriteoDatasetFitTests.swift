import Foundation
@testable import HerdData
import HerdTensor
import XCTest

/// `CriteoDataset.fitAndOpen` (one pass) against `FeatureState.fit` + `CriteoDataset.open` (two).
final class CriteoDatasetFitTests: XCTestCase {
    private func assertSameData(_ a: CriteoDataset, _ b: CriteoDataset, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.rows, b.rows, file: file, line: line)
        XCTAssertEqual(a.skippedRows, b.skippedRows, file: file, line: line)
        let x = a.batch(range: 0..<a.rows), y = b.batch(range: 0..<b.rows)
        XCTAssertEqual(x.dense.array, y.dense.array, file: file, line: line)
        XCTAssertEqual(x.sparse, y.sparse, file: file, line: line)
        XCTAssertEqual(x.labels, y.labels, file: file, line: line)
    }

    private func twoPass(_ path: String, _ config: FeatureConfig, _ cacheDir: String, onError: OnError = .fail) throws
        -> (state: FeatureState, dataset: CriteoDataset)
    {
        let state = try FeatureState.fit(trainPath: path, config: config, onError: onError)
        return (state, try CriteoDataset.open(path: path, state: state, cacheDirectory: cacheDir, onError: onError))
    }

    func testOnePassEqualsTwoPassesByteForByte() throws {
        let dir = try TemporaryDirectory()
        try CriteoGenerator(rows: 6000, seed: 5).write(to: dir.path, testFraction: 0.1)
        let path = dir.file("train.txt")
        var mixed = FeatureConfig.vocabulary(freqLimit: 2)
        mixed.columns[0] = .hashing(tableSize: 97)
        mixed.columns[5] = .vocabulary(freqLimit: 1)
        mixed.columns[9] = .vocabulary(freqLimit: 4)
        for (i, config) in [FeatureConfig.vocabulary(freqLimit: 2), mixed].enumerated() {
            let reference = try twoPass(path, config, dir.file("two"))
            let oneDir = dir.file("one-\(i)")
            // Small chunks and blocks: many rounds, many blocks to renumber, a partial last block.
            let small = try CriteoDataset.fitAndOpen(
                path: path, config: config, format: .auto, cacheDirectory: dir.file("small"), onError: .fail,
                chunkBytes: 20 << 10, blockRows: 700)
            XCTAssertEqual(small.state, reference.state)
            XCTAssertEqual(small.state.fittedRows, 5400)
            XCTAssertEqual(small.state.fingerprint, reference.state.fingerprint)
            XCTAssertTrue(small.dataset.builtCache)
            assertSameData(small.dataset, reference.dataset)
            // Default blocks: the cache file is the one `open` writes, byte for byte, at the same path.
            let one = try CriteoDataset.fitAndOpen(path: path, config: config, cacheDirectory: oneDir, chunkBytes: 64 << 10)
            XCTAssertEqual(one.state, reference.state)
            XCTAssertEqual(URL(fileURLWithPath: one.dataset.cachePath).lastPathComponent,
                           URL(fileURLWithPath: reference.dataset.cachePath).lastPathComponent)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: one.dataset.cachePath)),
                           try Data(contentsOf: URL(fileURLWithPath: reference.dataset.cachePath)))
            // The cache is reusable by `open` (header: source, state fingerprint, format).
            XCTAssertFalse(try CriteoDataset.open(path: path, state: one.state, cacheDirectory: oneDir).builtCache)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: oneDir).count, 1)  // no provisional file left
        }
    }

    func testMalformedRowsSkippedOrFailingLikeTwoPasses() throws {
        let dir = try TemporaryDirectory()
        var lines = (0..<60).map { sampleRow($0 % 7) }  // repeated values, so freqLimit 2 keeps some
        lines[3] = lines[3].replacingOccurrences(of: "\t", with: ",")  // 1 field
        lines[40] = "2" + lines[40].dropFirst()  // bad label
        lines.insert("", at: 20)  // blank line: ignored
        let path = try dir.write("train.txt", lines.joined(separator: "\n") + "\n")
        let config = FeatureConfig.vocabulary(freqLimit: 2)

        let reference = try twoPass(path, config, dir.file("two"), onError: .skip)
        let one = try CriteoDataset.fitAndOpen(path: path, config: config, cacheDirectory: dir.file("one"), onError: .skip)
        XCTAssertEqual(one.state, reference.state)
        XCTAssertEqual(one.state.fittedSkippedRows, 2)
        XCTAssertEqual(one.dataset.rows, 58)
        XCTAssertEqual(one.dataset.skippedRows, 2)
        assertSameData(one.dataset, reference.dataset)

        XCTAssertThrowsError(try CriteoDataset.fitAndOpen(path: path, config: config, cacheDirectory: dir.file("fail"))) {
            XCTAssertEqual("\($0)", "\(path):4: expected 40 fields, found 1")
        }
        // Nothing is left behind by the failed pass.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.file("fail")), [])
        XCTAssertThrowsError(try CriteoDataset.fitAndOpen(path: dir.file("missing.txt"), config: config)) {
            XCTAssertEqual("\($0)", "\(HerdDataError.fileNotFound(path: dir.file("missing.txt")))")
        }
        XCTAssertThrowsError(try CriteoDataset.fitAndOpen(path: path, config: .vocabulary(freqLimit: 0)))
    }

    func testHashingOnlyConfigAndUnlabelledFile() throws {
        let dir = try TemporaryDirectory()
        let text = (0..<300).map { sampleRow($0 % 11).split(separator: "\t", omittingEmptySubsequences: false).dropFirst().joined(separator: "\t") }
            .joined(separator: "\n") + "\n"
        let path = try dir.write("test.txt", text)
        for config in [FeatureConfig.hashing(tableSize: 1000), .vocabulary(freqLimit: 3)] {
            let reference = try twoPass(path, config, dir.file("two"))
            let one = try CriteoDataset.fitAndOpen(path: path, config: config, cacheDirectory: dir.file("one"), chunkBytes: 1000)
            XCTAssertEqual(one.state, reference.state)
            XCTAssertFalse(one.dataset.labelled)
            assertSameData(one.dataset, reference.dataset)
        }
    }

    /// The provisional numbering against a plain loop over a dictionary.
    func testFirstSeenCounterMatchesPlainLoop() {
        var rng = SplitMix64(seed: 9)
        let n = 5000
        var categorical = [UInt64](repeating: 0, count: n * Criteo.sparseCount)
        for i in categorical.indices {
            let r = rng.next()
            categorical[i] = r % 10 == 0 ? RawChunk.missing : ((r >> 8) % UInt64(1 + (i % Criteo.sparseCount) * 40) &* 0x0101_0101) & 0xFFFF_FFFF
        }
        categorical[7] = UInt64(UInt32.max)
        let counters: [FirstSeenCounter?] = (0..<Criteo.sparseCount).map { $0 % 5 == 0 ? nil : FirstSeenCounter() }
        var ids = [Int32](repeating: -7, count: n * Criteo.sparseCount)
        // Two calls: numbering continues across chunks.
        let half = n / 2 * Criteo.sparseCount
        var first = [Int32](repeating: -7, count: n / 2 * Criteo.sparseCount)
        var second = [Int32](repeating: -7, count: (n - n / 2) * Criteo.sparseCount)
        FirstSeenCounter.number(Array(categorical[..<half]), into: &first, counters: counters)
        FirstSeenCounter.number(Array(categorical[half...]), into: &second, counters: counters)
        for c in 0..<Criteo.sparseCount {
            for r in 0..<(n / 2) { ids[c * n + r] = first[c * (n / 2) + r] }
            for r in 0..<(n - n / 2) { ids[c * n + n / 2 + r] = second[c * (n - n / 2) + r] }
        }
        for c in 0..<Criteo.sparseCount {
            var numbers: [UInt64: Int32] = [:]
            var counts: [UInt32: Int] = [:]
            var order: [UInt32] = []
            for r in 0..<n {
                let v = categorical[r * Criteo.sparseCount + c]
                var expected: Int32 = -7  // untouched (hashing column)
                if counters[c] != nil {
                    if v == RawChunk.missing {
                        expected = 0
                    } else {
                        if numbers[v] == nil {
                            order.append(UInt32(v))
                            numbers[v] = Int32(order.count)
                        }
                        expected = numbers[v]!
                        counts[UInt32(v), default: 0] += 1
                    }
                }
                XCTAssertEqual(ids[c * n + r], expected, "column \(c) row \(r)")
            }
            guard let counter = counters[c]?.counts else { continue }
            XCTAssertEqual(counter.values, order)
            XCTAssertEqual(counter.counts, order.map { counts[$0]! })
            let vocabulary = counter.vocabulary(freqLimit: 2)
            XCTAssertEqual(vocabulary, Vocabulary(counts: counts, freqLimit: 2))
            XCTAssertEqual(counter.finalIDs(vocabulary), [0] + order.map { vocabulary.id(for: UInt64($0)) })
        }
    }
}
