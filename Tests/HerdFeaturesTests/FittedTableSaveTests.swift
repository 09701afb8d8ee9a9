import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

/// A fitted index is saved from its lookup table's bytes (`StringArrays.placeholder(table:)`):
/// the JSON must be `JSONEncoder`'s and the sidecar the one the strings give, and a table whose
/// bytes are not valid UTF-8 must go through the strings as before.
final class FittedTableSaveTests: XCTestCase {
    /// A table of `values` (raw bytes, each twice) fitted with one categorify step.
    func fitted(_ values: [[UInt8]]) throws -> FittedPipeline {
        var offsets = [0], bytes: [UInt8] = []
        for v in values + values {
            bytes += v
            offsets.append(bytes.count)
        }
        let table = try FeatureTable([("id", Column(type: .string, data: .string(StringData(offsets: offsets, bytes: bytes))))])
        let pipeline = try Pipeline.decode(json: try JSONValue(json: Data(#"{"steps": [{"op": "categorify", "columns": ["id"]}]}"#.utf8)))
        return try pipeline.fit(table).1
    }

    func ids(_ n: Int) -> [[UInt8]] { (0..<n).map { Array(String(format: "%08lX", $0 &* 2_654_435_761 % 1_000_003).utf8) } }

    /// The sidecar as the strings give it (`FittedSidecar.encode(json:arrays:spliced:)`).
    func stringSidecar(_ f: FittedPipeline, json: Data) -> Data {
        let (_, stash) = StringArrays.extract(json)
        var spliced: [(array: Int, start: Int, end: Int)] = []
        var from = json.startIndex
        for i in stash.entries.indices {
            let key = Array("\"values\" : [".utf8)
            var at = from
            while !json[at..<(at + key.count)].elementsEqual(key) { at += 1 }
            let start = at + key.count - 1
            var depth = 0, end = start
            for j in start..<json.endIndex {  // the values are ids without brackets
                if json[j] == UInt8(ascii: "[") { depth += 1 }
                if json[j] == UInt8(ascii: "]") { depth -= 1; if depth == 0 { end = j + 1; break } }
            }
            spliced.append((i, start - json.startIndex, end - json.startIndex))
            from = end
        }
        return json.withUnsafeBytes { FittedSidecar.encode(json: $0, arrays: stash.arrays, spliced: spliced) }
    }

    func testTablePathGivesTheStringPathsBytes() throws {
        // ASCII ids, escapes, and valid multi-byte UTF-8.
        let values = ids(300) + [Array("a/b".utf8), Array("\"q\"".utf8), [9, 10, 0], Array("é日本😀".utf8), []]
        let f = try fitted(values)
        XCTAssertTrue(f.stringIndices[0].values.count == values.count)
        let (json, sidecar) = try f.files()
        XCTAssertEqual(json, try f.jsonData(fastStrings: false))
        let (_, stash) = StringArrays.extract(json)
        XCTAssertEqual(stash.entries.count, 1)
        XCTAssertEqual(sidecar, stringSidecar(f, json: json))
        // And it loads back to the same pipeline.
        let loaded = try FittedPipeline.decode(json: json, sidecar: sidecar, source: "t", sidecarSource: "t.strings") { XCTFail($0) }
        XCTAssertEqual(loaded, f)
    }

    func testInvalidUTF8GoesThroughTheStrings() throws {
        let values = ids(40) + [[0xFF, 0x41], [0xC3]]
        let f = try fitted(values)
        let (json, sidecar) = try f.files()
        XCTAssertEqual(json, try f.jsonData(fastStrings: false))  // repaired (U+FFFD) as JSONEncoder writes them
        XCTAssertEqual(sidecar, stringSidecar(f, json: json))
    }

    func testIsValidUTF8EqualsPlainCheck() {
        let cases: [[[UInt8]]] = [[], [[]], ids(10), ids(10) + [Array("é".utf8)], ids(3) + [[0xFF]], [[0xE6, 0x97]], [Array("日本".utf8), [0x41]],
                                  [Array(repeating: 0x41, count: 13) + [0xC3, 0xA9]], [Array(repeating: 0x41, count: 13) + [0xC3]]]
        for keys in cases {
            var t = KeyTable()
            for k in keys { _ = k.withUnsafeBytes { t.insert($0) } }
            let plain = keys.allSatisfy { String(validating: $0, as: UTF8.self) != nil }
            XCTAssertEqual(t.isValidUTF8, plain, "\(keys)")
        }
    }
}
