import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

/// The fitted pipeline's long string arrays bypass JSONEncoder/JSONDecoder
/// (`StringArrays`): same bytes out, same values back.
final class FittedPipelineJSONTests: XCTestCase {
    /// Values that exercise every escaping rule, then plain ids.
    static func awkwardValues() -> [String] {
        var v = (0..<128).map { String(UnicodeScalar(UInt8($0))) }  // every ASCII byte, controls included
        v += ["a/b", "\"quoted\"", "back\\slash", "é", "日本", "😀 emoji", "\u{2028}sep", "\u{7F}del", "", " lead", "tab\tin"]
        v += (0..<500).map { String(format: "%016llx", UInt64($0) &* 0x9E37_79B9_7F4A_7C15) }
        return v
    }

    func fitted() throws -> FittedPipeline { try Self.fitted() }

    /// A pipeline fitted on `awkwardValues` (also used by `FittedSidecarTests`).
    static func fitted() throws -> FittedPipeline {
        let values = awkwardValues()
        // Every value twice so a freq_limit of 2 keeps it; a short list column stays with the coder.
        let rows = values + values
        let table = try FeatureTable([
            ("id", Column(strings: rows)),
            ("tag", Column(stringLists: rows.indices.map { $0 % 3 == 0 ? nil : ["x", "y/z"] })),
            ("n", Column(int64s: rows.indices.map { Int64($0 % 7) })),
        ])
        let pipeline = try Pipeline.decode(json: try JSONValue(json: Data("""
        {"steps": [
          {"op": "categorify", "columns": ["tag"]},
          {"op": "count_encode", "columns": ["id"], "out_columns": ["id_count"]},
          {"op": "categorify", "columns": ["id"], "freq_limit": 2},
          {"op": "min_max_scale", "columns": ["n"]}
        ]}
        """.utf8)))
        return try pipeline.fit(table).1
    }

    func testFastEncodingGivesJSONEncodersBytes() throws {
        let f = try fitted()
        XCTAssertGreaterThanOrEqual(f.stringIndices.map(\.values.count).max() ?? 0, 600)
        let fast = try f.jsonData(fastStrings: true)
        let slow = try f.jsonData(fastStrings: false)
        XCTAssertEqual(fast.count, slow.count)
        XCTAssertTrue(fast == slow, "fast fitted-pipeline JSON differs from JSONEncoder's")
    }

    func testFastDecodingGivesTheSameValues() throws {
        let f = try fitted()
        let json = try f.jsonData(fastStrings: false)
        let fast = try FittedPipeline.decode(json, source: "test", fastStrings: true)
        let slow = try FittedPipeline.decode(json, source: "test", fastStrings: false)
        XCTAssertEqual(fast, f)
        XCTAssertEqual(slow, f)
        // The extraction really took the long arrays (index values and count-encoding values).
        XCTAssertEqual(StringArrays.extract(json).arrays.arrays.count, 2)
    }

    func testCompactAndOddlySpacedJSONDecodes() throws {
        let f = try fitted()
        // Re-encode compactly (no spaces) with escaped slashes and \u escapes JSONEncoder never writes.
        var compact = String(decoding: try JSONValue(json: try f.jsonData(fastStrings: false)).jsonData(), as: UTF8.self)
        compact = compact.replacingOccurrences(of: "é", with: "\\u00e9").replacingOccurrences(of: "😀", with: "\\ud83d\\ude00")
        let decoded = try FittedPipeline.decode(Data(compact.utf8), source: "test", fastStrings: true)
        XCTAssertEqual(decoded, f)
    }

    func testMalformedArraysFallBackToJSONDecodersErrors() throws {
        let f = try fitted()
        let json = String(decoding: try f.jsonData(fastStrings: false), as: UTF8.self)
        // A number among the strings, a lone surrogate, a truncated file: never a crash, and the
        // same outcome (error or not) as JSONDecoder alone.
        let firstValue = json.range(of: "\"values\" : [\n")!
        let variants = [
            json.replacingCharacters(in: firstValue, with: "\"values\" : [\n 7,\n"),
            json.replacingCharacters(in: firstValue, with: "\"values\" : [\n \"\\udc00\",\n"),
            String(json.prefix(json.count / 2)),
        ]
        for v in variants {
            let fast = Result { try FittedPipeline.decode(Data(v.utf8), source: "t", fastStrings: true) }
            let slow = Result { try FittedPipeline.decode(Data(v.utf8), source: "t", fastStrings: false) }
            switch (fast, slow) {
            case (.success(let a), .success(let b)): XCTAssertEqual(a, b)
            case (.failure, .failure): break
            default: XCTFail("fast and slow decoding disagree on a malformed file")
            }
        }
    }
}
