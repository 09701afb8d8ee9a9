import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

final class CSVReaderTests: XCTestCase {
    let recsysSchema = CSVSchema(columns: [
        .init(name: "tokens", type: .stringList, listSeparator: "\t"),
        .init(name: "ts", type: .int64),
        .init(name: "user", type: .string),
        .init(name: "rate", type: .double),
        .init(name: "ids", type: .int64List, listSeparator: "|"),
    ], separator: "\u{01}", header: false)

    func testRecSysStyleFileWithSchemaNullsAndLists() throws {
        let dir = try TemporaryDirectory()
        let rows = [
            ["a\tb\tc", "1612345678", "u1", "0.25", "1|2"],
            ["", "", "", "", ""],
            ["z", "-5", "u2", "1e3", "7"],
        ]
        let path = try dir.write("t.tsv", rows.map { $0.joined(separator: "\u{01}") }.joined(separator: "\r\n") + "\n")
        let (t, summary) = try CSVReader(schema: recsysSchema).read(path: path)
        XCTAssertEqual(summary, CSVReadSummary(rows: 3, skippedRows: 0, lines: 3, skippedSamples: []))
        XCTAssertEqual(t.names, ["tokens", "ts", "user", "rate", "ids"])
        XCTAssertEqual(t["tokens"].values, [.list([.string("a"), .string("b"), .string("c")]), .null, .list([.string("z")])])
        XCTAssertEqual(t["ts"].values, [.int(1_612_345_678), .null, .int(-5)])
        XCTAssertEqual(t["user"].values, [.string("u1"), .null, .string("u2")])
        XCTAssertEqual(t["rate"].values, [.double(0.25), .null, .double(1000)])
        XCTAssertEqual(t["ids"].values, [.list([.int(1), .int(2)]), .null, .list([.int(7)])])
    }

    func testHeaderAndTypeInferenceAcrossManyParts() throws {
        let dir = try TemporaryDirectory()
        var text = "\u{FEFF}id,price,name\n"
        for i in 0..<500 { text += "\(i),\(i % 7 == 0 ? "" : "\(Double(i) / 4)"),n\(i % 13)\n" }
        text += "\n"  // blank last line is ignored
        let path = try dir.write("h.csv", text)
        let (t, s) = try CSVReader(partBytes: 64).read(path: path)
        XCTAssertEqual(s.rows, 500)
        XCTAssertEqual(s.lines, 502)
        XCTAssertEqual(t.schema.map(\.type), [.int64, .double, .string])
        XCTAssertEqual(t["id"].int64Values, (0..<500).map { Int64($0) })
        XCTAssertEqual(t["price"][7], .null)
        XCTAssertEqual(t["price"][9], .double(2.25))
        XCTAssertEqual(t["name"][27], .string("n1"))
        // Without a header: Spark-style names.
        let p2 = try dir.write("nh.csv", "1,x\n2,y\n")
        let (t2, _) = try CSVReader(header: false).read(path: p2)
        XCTAssertEqual(t2.names, ["_c0", "_c1"])
    }

    func testErrorsFailWithFileLineAndSkipCounts() throws {
        let dir = try TemporaryDirectory()
        var lines = (0..<40).map { "\($0),\($0 * 2),s\($0)" }
        lines[9] = "9,18"                   // line 11 (header is line 1)
        lines[20] = "20,abc,s20"            // line 22
        lines[30] = "30,60,s30,extra,more"  // line 32
        let path = try dir.write("bad.csv", "a,b,c\n" + lines.joined(separator: "\n") + "\n")
        let schema = CSVSchema(columns: [.init(name: "a", type: .int64), .init(name: "b", type: .int64), .init(name: "c", type: .string)])
        for partBytes in [1 << 20, 16] {
            XCTAssertThrowsError(try CSVReader(schema: schema, partBytes: partBytes).read(path: path)) {
                XCTAssertEqual("\($0)", "\(path):11: expected 3 fields, found 2")
            }
            let (t, s) = try CSVReader(schema: schema, onError: .skip, partBytes: partBytes).read(path: path)
            XCTAssertEqual(t.rowCount, 37)
            XCTAssertEqual(s.skippedRows, 3)
            XCTAssertEqual(s.skippedSamples.map(\.description), [
                "\(path):11: expected 3 fields, found 2",
                "\(path):22: column 'b': cannot parse 'abc' as int64",
                "\(path):32: expected 3 fields, found 5",
            ])
            XCTAssertFalse(t["a"].int64Values!.contains(20))
            XCTAssertEqual(t["c"][36], .string("s39"))
        }
    }

    func testQuotedFields() throws {
        let dir = try TemporaryDirectory()
        let text = "\"id\",name,tags\n1,\"a, b\",\"x|y\"\n2,\"say \"\"hi\"\"\",\n3,\"\",z\n4,,\n"
        let path = try dir.write("q.csv", text)
        let schema = CSVSchema(columns: [.init(name: "id", type: .int64), .init(name: "name", type: .string),
                                         .init(name: "tags", type: .stringList, listSeparator: "|")], quote: "\"")
        let (t, _) = try CSVReader(schema: schema).read(path: path)
        XCTAssertEqual(t["name"].values, [.string("a, b"), .string("say \"hi\""), .string(""), .null])
        XCTAssertEqual(t["tags"].values, [.list([.string("x"), .string("y")]), .null, .list([.string("z")]), .null])
        // Header names are unquoted too; without quoting the quotes are data.
        let (h, _) = try CSVReader(quote: UInt8(ascii: "\"")).read(path: path)
        XCTAssertEqual(h.names, ["id", "name", "tags"])
        XCTAssertThrowsError(try CSVReader().read(path: path)) {
            XCTAssertEqual("\($0)", "\(path):2: expected 3 fields, found 4")
        }
        // Errors name the line.
        let bad = try dir.write("b.csv", "id,name\n1,\"open\n2,\"x\"y\n")
        XCTAssertThrowsError(try CSVReader(quote: UInt8(ascii: "\"")).read(path: bad)) {
            XCTAssertEqual("\($0)", "\(bad):2: column 'name': unterminated quoted field (quoted fields cannot span lines)")
        }
        let (_, s) = try CSVReader(onError: .skip, quote: UInt8(ascii: "\"")).read(path: try dir.write("c.csv", "id,name\n1,\"x\"y\n2,ok\n"))
        XCTAssertEqual(s.skippedSamples.map(\.reason), ["column 'name': text after the closing quote"])
        // Writer round trip with quoting.
        let out = dir.file("w.csv")
        try CSVWriter.write(t, to: out, quote: UInt8(ascii: "\""))
        XCTAssertEqual(try CSVReader(schema: schema).read(path: out).table, t)
    }

    func testMaxListLengthIsEnforced() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("l.tsv", "1\ta,b\n2\ta,b,c,d\n3\t\n")
        var schema = CSVSchema(columns: [.init(name: "k", type: .int64), .init(name: "l", type: .stringList, listSeparator: ",")],
                               separator: "\t", header: false, maxListLength: 3)
        XCTAssertThrowsError(try CSVReader(schema: schema).read(path: path)) {
            XCTAssertEqual("\($0)", "\(path):2: column 'l': list of 4 elements exceeds the maximum list length 3")
        }
        let (t, s) = try CSVReader(schema: schema, onError: .skip).read(path: path)
        XCTAssertEqual(s.skippedRows, 1)
        XCTAssertEqual(t["k"].int64Values, [1, 3])
        XCTAssertEqual(t["l"].values, [.list([.string("a"), .string("b")]), .null])
        schema.maxListLength = nil
        XCTAssertEqual(try CSVReader(schema: schema).read(path: path).table.rowCount, 3)
    }

    func testFileErrorsAndSchemaFile() throws {
        let dir = try TemporaryDirectory()
        XCTAssertThrowsError(try CSVReader().read(path: dir.file("nope.csv"))) {
            XCTAssertEqual($0 as? HerdDataError, .fileNotFound(path: dir.file("nope.csv")))
        }
        let empty = try dir.write("e.csv", "")
        XCTAssertThrowsError(try CSVReader().read(path: empty)) { XCTAssertEqual($0 as? HerdDataError, .emptyFile(path: empty)) }
        let headerOnly = try dir.write("h.csv", "a,b\n")
        XCTAssertThrowsError(try CSVReader().read(path: headerOnly)) {
            XCTAssertEqual($0 as? HerdDataError, .noRows(path: headerOnly, skippedRows: 0))
        }
        let schemaPath = try dir.write("s.json", #"{"separator":"\u0001","columns":[{"name":"t","type":"string_list","list_separator":"\t"},{"name":"x","type":"int64"}],"max_list_length":5}"#)
        let schema = try CSVSchema.load(path: schemaPath)
        XCTAssertEqual(schema.columns[0].listSeparator, "\t")
        XCTAssertEqual(schema.maxListLength, 5)
        let bad = try dir.write("b.json", #"{"columns":[{"name":"t","type":"string_list"}]}"#)
        XCTAssertThrowsError(try CSVSchema.load(path: bad)) {
            XCTAssertEqual("\($0)", "\(bad): invalid schema: columns[0] 't': a string_list column needs a one-byte list_separator")
        }
        let badType = try dir.write("c.json", #"{"columns":[{"name":"t","type":"text"}]}"#)
        XCTAssertThrowsError(try CSVSchema.load(path: badType)) {
            XCTAssertTrue("\($0)".hasPrefix("\(badType): invalid schema: columns[0].type:"), "\($0)")
        }
    }

    func testBinaryAndCSVRoundTrip() throws {
        let dir = try TemporaryDirectory()
        let t = try sampleTable().with("ids", Column(int64Lists: [[1], nil, [], [2, 3], [4], [5, 6, 7]]))
        let path = dir.file("t.herdtable")
        try TableFile.write(t, to: path)
        XCTAssertEqual(try TableFile.read(path: path), t)
        XCTAssertEqual(try TableFile.read(path: path, columns: ["ids", "user"]), try t.select(["ids", "user"]))
        XCTAssertThrowsError(try TableFile.read(path: path, columns: ["nope"])) {
            XCTAssertEqual("\($0)", "no column named 'nope' (columns: user, count, score, tags, ids)")
        }
        // Truncation is detected.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 10).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TableFile.read(path: path)) {
            XCTAssertTrue("\($0)".contains("runs past the end of the file"), "\($0)")
        }
        // CSV: written with a header, read back with a schema.
        let csv = dir.file("t.csv")
        let plain = try t.drop(["tags", "ids"]).with("tags", Column(stringLists: [["x", "y"], nil, nil, ["y"], ["z"], ["y"]]))
        try CSVWriter.write(plain, to: csv)
        let schema = CSVSchema(columns: plain.schema.map { .init(name: $0.name, type: $0.type, listSeparator: $0.type.isList ? "|" : nil) })
        XCTAssertEqual(try CSVReader(schema: schema).read(path: csv).table, plain)
    }
}
