import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

/// `CSVReader.skipColumns` and `Pipeline.unreadColumns`: columns a pipeline drops unread are not
/// parsed, and the result is the same as reading everything.
final class ProjectionTests: XCTestCase {
    let schema = CSVSchema(columns: [
        .init(name: "tokens", type: .stringList, listSeparator: "|"),
        .init(name: "id", type: .string),
        .init(name: "ts", type: .int64),
        .init(name: "user", type: .string),
        .init(name: "n", type: .int64),
    ], separator: ",", header: false, maxListLength: 3, quote: "\"")

    func testSkippedColumnsAreScannedNotStored() throws {
        let dir = try TemporaryDirectory()
        var lines: [String] = []
        for i in 0..<300 {
            // Skipped columns carry what would be errors if parsed (too-long lists, text in a
            // quoted field with separators) — skipping does not look at them.
            let tokens = i % 5 == 0 ? "\"a,b|c|d|e\"" : "t\(i)|x"
            lines.append("\(tokens),id\(i),\(i % 7 == 0 ? "" : String(1_600_000_000 + i)),u\(i % 11),\(i)")
        }
        let path = try dir.write("p.csv", lines.joined(separator: "\n") + "\n")
        for partBytes in [1 << 20, 100] {
            var reader = CSVReader(schema: schema, partBytes: partBytes)
            reader.skipColumns = ["tokens", "id"]
            let (t, s) = try reader.read(path: path)
            XCTAssertEqual(s.rows, 300)
            XCTAssertEqual(t.names, ["ts", "user", "n"])
            XCTAssertEqual(t["n"].int64Values, (0..<300).map { Int64($0) })
            XCTAssertEqual(t["ts"][7], .null)
            XCTAssertEqual(t["ts"][8], .int(1_600_000_008))
            XCTAssertEqual(t["user"][12], .string("u1"))
            // Reading everything fails on the long lists; skipping them gives the same other columns.
            var lenient = CSVReader(schema: schema, partBytes: partBytes)
            lenient.maxListLength = 10
            XCTAssertEqual(try lenient.read(path: path).table.select(["ts", "user", "n"]), t)
            XCTAssertThrowsError(try CSVReader(schema: schema, partBytes: partBytes).read(path: path)) {
                XCTAssertEqual("\($0)", "\(path):1: column 'tokens': list of 4 elements exceeds the maximum list length 3")
            }
        }
    }

    func testSkippedColumnsStillCountFieldsAndUnknownNamesAreRefused() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("b.csv", "a|b,1,1,u,1\na,2,2,u\n\"open,3,3,u,3\n")
        var reader = CSVReader(schema: schema, onError: .skip)
        reader.skipColumns = ["tokens", "id"]
        let (t, s) = try reader.read(path: path)
        XCTAssertEqual(t["n"].int64Values, [1])
        XCTAssertEqual(s.skippedSamples.map(\.description), [
            "\(path):2: expected 5 fields, found 4",
            "\(path):3: column 'tokens': unterminated quoted field (quoted fields cannot span lines)",
        ])
        reader.skipColumns = ["tokens", "nope"]
        XCTAssertThrowsError(try reader.read(path: path)) {
            XCTAssertEqual("\($0)", "\(path): cannot skip [\"nope\"]: no such columns (columns: tokens, id, ts, user, n)")
        }
        reader.skipColumns = Set(schema.columns.map(\.name))
        XCTAssertThrowsError(try reader.read(path: path)) {
            XCTAssertEqual("\($0)", "\(path): skipColumns names every column; nothing would be read")
        }
    }

    func testUnreadColumnsOfAPipeline() throws {
        func pipeline(_ steps: String) throws -> Pipeline { try Pipeline.decode(json: try JSONDecoder().decode(JSONValue.self, from: Data(steps.utf8))) }
        let names = ["tokens", "id", "ts", "user", "n"]
        let p = try pipeline("""
            {"steps": [{"op": "not_null", "columns": ["ts"], "out_columns": ["label"]},
                       {"op": "drop", "columns": ["ts", "tokens", "id"]},
                       {"op": "categorify", "columns": ["user"]}]}
            """)
        XCTAssertEqual(p.unreadColumns(names), ["tokens", "id"])  // ts is read by not_null first
        // A column named by any earlier step (here as an output name) is never skipped.
        XCTAssertEqual(try pipeline("""
            {"steps": [{"op": "list_length", "columns": ["n"], "out_columns": ["tokens"]}, {"op": "drop", "columns": ["tokens"]}]}
            """).unreadColumns(names), [])
        // select leaves columns out; fillna over every column reads none of them for others.
        XCTAssertEqual(try pipeline("""
            {"steps": [{"op": "fillna", "value": 0}, {"op": "select", "columns": ["user", "n"]}]}
            """).unreadColumns(names), ["tokens", "id", "ts"])
        // After a rename, names refer to other columns: nothing further is skipped.
        XCTAssertEqual(try pipeline("""
            {"steps": [{"op": "rename", "mapping": {"n": "id"}}, {"op": "drop", "columns": ["id"]}]}
            """).unreadColumns(names), [])
    }

    func testFittingOnAProjectedReadGivesTheSamePipelineAndOutput() throws {
        let dir = try TemporaryDirectory()
        let lines = (0..<200).map { i in "t\(i % 3)|x,id\(i),\(i % 4 == 0 ? "" : "5"),u\(i % 9),\(i % 13)" }
        let path = try dir.write("f.csv", lines.joined(separator: "\n") + "\n")
        let p = try Pipeline.decode(json: try JSONDecoder().decode(JSONValue.self, from: Data("""
            {"steps": [{"op": "not_null", "columns": ["ts"], "out_columns": ["label"]},
                       {"op": "drop", "columns": ["ts", "tokens", "id"]},
                       {"op": "categorify", "columns": ["user"], "freq_limit": 2},
                       {"op": "min_max_scale", "columns": ["n"]}]}
            """.utf8)))
        let full = try CSVReader(schema: schema).read(path: path).table
        var reader = CSVReader(schema: schema)
        reader.skipColumns = p.unreadColumns(schema.columns.map(\.name))
        XCTAssertEqual(reader.skipColumns, ["tokens", "id"])
        let projected = try reader.read(path: path).table
        XCTAssertEqual(projected.names, ["ts", "user", "n"])
        let (expected, expectedFitted) = try p.fit(full)
        let (out, fitted) = try p.fit(projected, absent: reader.skipColumns)
        XCTAssertEqual(out, expected)
        XCTAssertEqual(fitted, expectedFitted)  // every step as written: still applies to full tables
        XCTAssertEqual(try fitted.apply(full), expected)
        XCTAssertEqual(try fitted.apply(projected, absent: fitted.unreadColumns(schema.columns.map(\.name))), expected)
        // Without `absent`, the drop step names the missing columns.
        XCTAssertThrowsError(try p.fit(projected)) {
            XCTAssertTrue("\($0)".contains("steps[1] (drop).columns: no column named 'tokens'"), "\($0)")
        }
    }

    func testHashBucketsAreTheSameWithAndWithoutTheWorkerCache() throws {
        // Few distinct texts (cached) and more distinct texts than the cache holds (the rest computed).
        let few = (0..<5000).map { Int64($0 % 37) }
        let many = (0..<(FeatureTable.hashCacheLimit + 3000)).map { Int64($0) }
        for values in [few, many] {
            let t = try FeatureTable([("k", Column(int64s: values)), ("s", Column(strings: values.map { $0 % 3 == 0 ? nil : "v\($0 % 5)" }))])
            let h = try t.crossHashEncode(["k", "s"], bins: 600).hashEncode(["k"], bins: 1000)
            let expectedK = values.map { v -> Int64 in
                var text = String(v)
                return text.withUTF8 { Int64(MD5.bucket(UnsafeRawBufferPointer($0), 1000)) }
            }
            XCTAssertEqual(h["k"].int64Values, expectedK)
            let expectedCross = values.map { v -> Int64 in
                var text = v % 3 == 0 ? "None" : "\(v)v\(v % 5)"
                return text.withUTF8 { Int64(MD5.bucket(UnsafeRawBufferPointer($0), 600)) }
            }
            XCTAssertEqual(h["crossed_k_s"].int64Values, expectedCross)
        }
    }
}
