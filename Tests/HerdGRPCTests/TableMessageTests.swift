import Foundation
import HerdFeatures
import HerdGRPC
import HerdServing
import HerdTensor
import XCTest

/// The wire form of tables and the split config, without a server.
final class TableMessageTests: XCTestCase {
    func testEveryColumnTypeWithNullsRoundTrips() throws {
        let table = try FeatureTable([
            ("i", Column(int64s: [1, nil, -3])),
            ("d", Column(doubles: [0.5, 2.25, nil])),
            ("s", Column(strings: ["a", nil, "ççç"])),
            ("il", Column(int64Lists: [[1, 2], nil, []])),
            ("sl", Column(stringLists: [["x"], ["y", "z"], nil])),
        ])
        let message = Herd_V1_Table(table)
        XCTAssertEqual(message.rows, 3)
        XCTAssertEqual(message.columns.map(\.type), [.int64, .double, .string, .int64List, .stringList])
        XCTAssertEqual(message.columns[0].nulls, [false, true, false])
        XCTAssertEqual(message.columns[3].listOffsets, [0, 2, 2, 2])
        let back = try Herd_V1_Table(serializedBytes: try message.serializedBytes() as [UInt8]).table(maxRows: 10)
        XCTAssertEqual(back.names, table.names)
        for name in table.names {
            XCTAssertEqual(try back.column(name).values, try table.column(name).values, name)
        }
    }

    func testMalformedTablesAreRefusedWithTheColumnsName() throws {
        let good = Herd_V1_Table(try FeatureTable([("a", Column(int64s: [1, 2])), ("l", Column(int64Lists: [[1], [2, 3]]))]))
        var cases: [(String, Herd_V1_Table)] = []
        var t = good; t.columns[0].int64Values = [1]; cases.append(("a", t))
        t = good; t.columns[0].doubleValues = [1, 2]; cases.append(("a", t))
        t = good; t.columns[0].type = .unspecified; cases.append(("a", t))
        t = good; t.columns[0].nulls = [true]; cases.append(("a", t))
        t = good; t.columns[1].listOffsets = [0, 3, 1]; cases.append(("l", t))
        t = good; t.columns[1].listOffsets = [0, 1, 9]; cases.append(("l", t))
        t = good; t.columns[0].listOffsets = [0, 1, 2]; cases.append(("a", t))
        t = good; t.columns.append(t.columns[0]); cases.append(("a", t))
        t = good; t.rows = 5; cases.append(("a", t))
        for (name, bad) in cases {
            XCTAssertThrowsError(try bad.table(maxRows: 100), "\(bad)") { error in
                XCTAssertTrue("\(error)".contains("'\(name)'"), "\(error)")
            }
        }
        var big = good
        big.rows = 1000
        XCTAssertThrowsError(try big.table(maxRows: 100))
    }

    func testFeatureRowsRoundTripAgainstTheirSchema() throws {
        let schema = FeatureSchema(keyColumn: "id", fields: [.init(name: "id", type: .int64), .init(name: "x", type: .double)])
        let rows = FeatureRows(schema: schema, ids: [7, 8], rows: [[.int(7), .double(1.5)], nil])
        let message = try Herd_V1_FeatureRows(rows)
        XCTAssertEqual(message.found, [true, false])
        XCTAssertEqual(try message.rows(schema: schema), rows)
        XCTAssertEqual(try Herd_V1_FeatureSchema(schema).schema(), schema)
        let other = FeatureSchema(keyColumn: "id", fields: [.init(name: "id", type: .int64)])
        XCTAssertThrowsError(try message.rows(schema: other))
    }

    func testSplitConfigDefaultsAddressesAndRefusals() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herd-split-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("c.json")
        try #"{"workspace": "/w", "host": "0.0.0.0", "admin_token": "t", "recall": {"port": 9001}, "ranking": {"address": "rank.svc:7000"}, "recommender": {"http_port": 0}}"#
            .write(to: file, atomically: true, encoding: .utf8)
        let c = try SplitConfig.load(path: file.path)
        XCTAssertEqual(c.adminToken, "t")
        XCTAssertEqual(c.bindHost(.recall), "0.0.0.0")
        XCTAssertEqual(c.grpcPort(.recall), 9001)
        XCTAssertEqual(c.grpcPort(.feature), 8982)
        XCTAssertEqual(try c.address(.recall), "127.0.0.1:9001")
        XCTAssertEqual(try c.address(.ranking), "rank.svc:7000")
        XCTAssertEqual(c.endpoint(.recommender).httpPort, 0)
        XCTAssertEqual(c.timeout, .seconds(1))
        XCTAssertEqual(try parseAddress("[::1]:8983").host, "::1")
        XCTAssertEqual(c.rankingPrecision, .fp32, "FP32 when absent")
        try #"{"workspace": "/w", "precision": "bf16"}"#.write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try SplitConfig.load(path: file.path).rankingPrecision, .bf16)

        for (text, needle) in [(#"{"workspace": "/w", "timeout": 5}"#, "unknown key 'timeout'"),
                               (#"{"workspace": "/w", "feature": {"prot": 1}}"#, "feature.prot"),
                               (#"{"workspace": "/w", "feature": {"port": -1}}"#, "feature.port"),
                               (#"{"workspace": "/w", "timeout_ms": 0}"#, "timeout_ms"),
                               (#"{"workspace": "/w", "precision": "fp16"}"#, "precision must be fp32 or bf16"),
                               (#"{"host": "x"}"#, "workspace"),
                               (#"[1]"#, "not a JSON object")] {
            try text.write(to: file, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try SplitConfig.load(path: file.path), text) { error in
                XCTAssertTrue("\(error)".contains(needle), "\(needle): \(error)")
            }
        }
        var zero = SplitConfig(workspace: "/w")
        zero.feature = .init(port: 0)
        XCTAssertThrowsError(try zero.address(.feature)) { XCTAssertTrue("\($0)".contains("feature.address"), "\($0)") }
    }
}
