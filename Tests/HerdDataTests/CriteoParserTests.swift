import Foundation
import HerdData
import XCTest

final class CriteoParserTests: XCTestCase {
    func testTSVWithEmptyFieldsNegativesAndDecimals() throws {
        var dense = Array(repeating: "", count: 13)
        dense[0] = "5"
        dense[1] = "-1"
        dense[2] = "260.0"
        dense[3] = "+7"
        dense[4] = "2.5"
        var cats = Array(repeating: "", count: 26)
        cats[0] = "05db9164"
        cats[1] = "FFFFFFFF"
        cats[2] = "a"
        let text = tsvRow(label: "1", dense: dense, cats: cats) + "\n" + sampleRow(1) + "\n"
        let (rows, summary) = try CriteoReader.parse(text: text)
        XCTAssertEqual(summary.format, CriteoFormat(delimiter: .tab, hasHeader: false, labelled: true))
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows.labels, [1, 0])
        XCTAssertEqual(rows.denseValue(row: 0, column: 0), 5)
        XCTAssertEqual(rows.denseValue(row: 0, column: 1), -1)
        XCTAssertEqual(rows.denseValue(row: 0, column: 2), 260)
        XCTAssertEqual(rows.denseValue(row: 0, column: 3), 7)
        XCTAssertEqual(rows.denseValue(row: 0, column: 4), 2.5)
        XCTAssertTrue(rows.denseValue(row: 0, column: 5).isNaN)
        XCTAssertEqual(rows.categoricalValue(row: 0, column: 0), 0x05db9164)
        XCTAssertEqual(rows.categoricalValue(row: 0, column: 1), 0xFFFF_FFFF)
        XCTAssertEqual(rows.categoricalValue(row: 0, column: 2), 0xa)
        XCTAssertEqual(rows.categoricalValue(row: 0, column: 3), RawChunk.missing)
        XCTAssertEqual(rows.denseValue(row: 1, column: 12), 13)
        XCTAssertEqual(rows.categoricalValue(row: 1, column: 25), 125)
    }

    func testCSVWithAndWithoutHeaderAndCRLF() throws {
        let body = sampleText(rows: 3, separator: ",")
        let withHeader = try CriteoReader.parse(text: criteoHeader + "\n" + body)
        XCTAssertEqual(withHeader.summary.format, CriteoFormat(delimiter: .comma, hasHeader: true, labelled: true))
        let without = try CriteoReader.parse(text: body)
        XCTAssertEqual(without.summary.format, CriteoFormat(delimiter: .comma, hasHeader: false, labelled: true))
        let tsv = try CriteoReader.parse(text: sampleText(rows: 3))
        let crlf = try CriteoReader.parse(text: body.replacingOccurrences(of: "\n", with: "\r\n"))
        XCTAssertEqual(withHeader.rows, tsv.rows)
        XCTAssertEqual(without.rows, tsv.rows)
        XCTAssertEqual(crlf.rows, tsv.rows)
        XCTAssertEqual(withHeader.summary.lines, 4)
        // A UTF-8 byte-order mark (spreadsheet export) is ignored, in memory and from a file.
        let bom = "\u{FEFF}" + criteoHeader + "\n" + body
        XCTAssertEqual(try CriteoReader.parse(text: bom).rows, tsv.rows)
        let dir = try TemporaryDirectory()
        let path = try dir.write("bom.csv", bom)
        XCTAssertEqual(try CriteoReader(path: path, chunkBytes: 200).readAll().rows, tsv.rows)
    }

    func testForcedFormatAndUnlabelledRows() throws {
        // Forcing "no header" makes the header a malformed row on line 1.
        let text = criteoHeader + "\n" + sampleText(rows: 2, separator: ",")
        XCTAssertThrowsError(try CriteoReader.parse(text: text, format: CriteoFormat(hasHeader: false), source: "f.csv")) {
            XCTAssertEqual("\($0)", "f.csv:1: label must be 0 or 1, found 'label'")
        }
        // 39 fields: unlabelled (Kaggle test.txt).
        let unlabelled = (0..<2).map { r in sampleRow(r).split(separator: "\t", omittingEmptySubsequences: false).dropFirst().joined(separator: "\t") }
            .joined(separator: "\n")
        let (rows, summary) = try CriteoReader.parse(text: unlabelled)
        XCTAssertEqual(summary.format.labelled, false)
        XCTAssertFalse(rows.labelled)
        XCTAssertEqual(rows.labels, [])
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows.denseValue(row: 1, column: 0), 1)
    }

    func testFileReaderMatchesInMemoryParseAcrossSmallChunks() throws {
        let dir = try TemporaryDirectory()
        let text = sampleText(rows: 500)
        let path = try dir.write("train.txt", text)
        let expected = try CriteoReader.parse(text: text).rows
        for chunkBytes in [64, 300, 4096, 1 << 20] {
            let (rows, summary) = try CriteoReader(path: path, chunkBytes: chunkBytes).readAll()
            XCTAssertEqual(rows, expected, "chunk \(chunkBytes)")
            XCTAssertEqual(summary.rows, 500)
            XCTAssertEqual(summary.lines, 500)
        }
        // No trailing newline.
        let path2 = try dir.write("b.txt", String(text.dropLast()))
        XCTAssertEqual(try CriteoReader(path: path2, chunkBytes: 256).readAll().rows, expected)
    }

    func testRealKaggleSampleFixture() throws {
        let path = "/work/shared/data/criteo_kaggle_sample_200.csv"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("fixture \(path) is absent") }
        let (rows, summary) = try CriteoReader(path: path).readAll()
        XCTAssertEqual(summary.format, CriteoFormat(delimiter: .comma, hasHeader: true, labelled: true))
        XCTAssertEqual(rows.count, 200)
        XCTAssertEqual(rows.labels.filter { $0 == 1 }.count, 49)
        XCTAssertEqual(summary.skippedRows, 0)
        // First data row: `0,,3,260.0,,17668.0,…,05db9164,…`
        XCTAssertTrue(rows.denseValue(row: 0, column: 0).isNaN)
        XCTAssertEqual(rows.denseValue(row: 0, column: 2), 260)
        XCTAssertEqual(rows.categoricalValue(row: 0, column: 0), 0x05db9164)
        XCTAssertEqual(rows.categoricalValue(row: 0, column: 18), RawChunk.missing)

        // The whole pipeline: fit, cache, batches.
        let dir = try TemporaryDirectory()
        let state = try FeatureState.fit(trainPath: path, config: .vocabulary(freqLimit: 2))
        let data = try CriteoDataset.open(path: path, state: state, cacheDirectory: dir.path)
        XCTAssertEqual(data.rows, 200)
        let labels = data.batches(size: 64, shuffle: 1, epoch: 0).flatMap(\.labels)
        XCTAssertEqual(labels.count, 200)
        XCTAssertEqual(labels.filter { $0 == 1 }.count, 49)
        XCTAssertEqual(state.tableSizes[8], 4)  // C9: a73ee510 ×178, 7cc72ec2 ×22, + missing and OOV rows
    }
}
