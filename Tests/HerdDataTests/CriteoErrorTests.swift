import Foundation
import HerdData
import XCTest

final class CriteoErrorTests: XCTestCase {
    /// Each malformed-row kind, its exact message.
    let badRows: [(row: String, reason: String)] = {
        var fields = sampleRow(7).components(separatedBy: "\t")
        var cases: [(String, String)] = []
        cases.append((fields.dropLast().joined(separator: "\t"), "expected 40 fields, found 39"))
        cases.append(((fields + ["x"]).joined(separator: "\t"), "expected 40 fields, found 41"))
        var f = fields; f[0] = "2"
        cases.append((f.joined(separator: "\t"), "label must be 0 or 1, found '2'"))
        f = fields; f[0] = ""
        cases.append((f.joined(separator: "\t"), "label is empty"))
        f = fields; f[3] = "12a"
        cases.append((f.joined(separator: "\t"), "I3: expected an integer, found '12a'"))
        f = fields; f[13] = "-"
        cases.append((f.joined(separator: "\t"), "I13: expected an integer, found '-'"))
        f = fields; f[14] = "xyz"
        cases.append((f.joined(separator: "\t"), "C1: expected a hex id of up to 8 digits, found 'xyz'"))
        f = fields; f[39] = "123456789"
        cases.append((f.joined(separator: "\t"), "C26: expected a hex id of up to 8 digits, found '123456789'"))
        fields[5] = "1.2.3"
        cases.append((fields.joined(separator: "\t"), "I5: expected an integer, found '1.2.3'"))
        return cases
    }()

    func testEachBadRowKindFailsWithFileAndLine() throws {
        let dir = try TemporaryDirectory()
        for (k, bad) in badRows.enumerated() {
            // Bad row on line 301: well past the first chunk with a 512-byte chunk size.
            let lines = (0..<300).map { sampleRow($0) } + [bad.row] + (0..<5).map { sampleRow($0) }
            let path = try dir.write("train\(k).txt", lines.joined(separator: "\n") + "\n")
            XCTAssertThrowsError(try CriteoReader(path: path, chunkBytes: 512).readAll()) { error in
                XCTAssertEqual("\(error)", "\(path):301: \(bad.reason)")
                XCTAssertEqual(error as? HerdDataError, .malformedRow(RowError(file: path, line: 301, reason: bad.reason)))
            }
        }
    }

    func testSkipModeCountsAndReportsExactLines() throws {
        let dir = try TemporaryDirectory()
        var lines = (0..<400).map { sampleRow($0) }
        let badLines = [1, 57, 250, 399]  // 0-based indices
        for (i, line) in badLines.enumerated() { lines[line] = badRows[i].row }
        let path = try dir.write("train.txt", lines.joined(separator: "\n") + "\n")
        for chunkBytes in [300, 1 << 20] {
            let (rows, summary) = try CriteoReader(path: path, onError: .skip, chunkBytes: chunkBytes).readAll()
            XCTAssertEqual(rows.count, 396)
            XCTAssertEqual(summary.skippedRows, 4)
            XCTAssertEqual(summary.skippedSamples.map(\.description),
                           badLines.enumerated().map { "\(path):\($1 + 1): \(badRows[$0].reason)" })
            XCTAssertEqual(rows.categoricalValue(row: 1, column: 0), 200)  // row 2 of the file
        }
        XCTAssertThrowsError(try CriteoReader(path: path, chunkBytes: 300).readAll()) {
            XCTAssertEqual("\($0)", "\(path):2: \(badRows[0].reason)")
        }
    }

    func testLineNumbersCountHeaderAndBlankLines() throws {
        let dir = try TemporaryDirectory()
        let text = criteoHeader + "\n" + sampleRow(0, separator: ",") + "\n\n" + "1,2,3\n"
        let path = try dir.write("eval.csv", text)
        XCTAssertThrowsError(try CriteoReader(path: path, chunkBytes: 100).readAll()) {
            XCTAssertEqual("\($0)", "\(path):4: expected 40 fields, found 3")
        }
    }

    func testMissingEmptyAndRowlessFiles() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.file("nope.txt")
        XCTAssertThrowsError(try CriteoReader(path: missing).readAll()) { XCTAssertEqual("\($0)", "\(missing): no such file") }
        let empty = try dir.write("empty.txt", "")
        XCTAssertThrowsError(try CriteoReader(path: empty).readAll()) { XCTAssertEqual("\($0)", "\(empty): the file is empty") }
        let header = try dir.write("header.csv", criteoHeader + "\n")
        XCTAssertThrowsError(try CriteoReader(path: header).readAll()) { XCTAssertEqual("\($0)", "\(header): the file has no data rows") }
        let allBad = try dir.write("bad.txt", "1\t2\n3\t4\n")
        XCTAssertThrowsError(try CriteoReader(path: allBad, onError: .skip).readAll()) {
            XCTAssertEqual("\($0)", "\(allBad): no usable rows (all 2 rows were malformed and skipped)")
        }
        XCTAssertThrowsError(try CriteoReader(path: dir.path).readAll()) { XCTAssertEqual("\($0)", "\(dir.path): not a regular file") }
        XCTAssertThrowsError(try CriteoDataset.open(path: missing, state: .hashing(tableSize: 10))) {
            XCTAssertEqual("\($0)", "\(missing): no such file")
        }
    }
}
