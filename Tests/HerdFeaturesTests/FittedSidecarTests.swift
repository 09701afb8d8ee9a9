import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

/// The binary sidecar of a fitted pipeline (`FittedSidecar`): it loads the same pipeline as the
/// JSON, and a missing, stale or damaged sidecar falls back to the JSON's values.
final class FittedSidecarTests: XCTestCase {
    /// The pipeline of `FittedPipelineJSONTests` (escapes of every kind, a count encoding, two
    /// long arrays, one short one).
    func fitted() throws -> FittedPipeline { try FittedPipelineJSONTests.fitted() }

    /// Saves `f` into a fresh directory; returns the directory (kept alive) and the JSON path.
    func saved(_ f: FittedPipeline) throws -> (TemporaryDirectory, String) {
        let dir = try TemporaryDirectory()
        let path = dir.file("pipeline.fitted.json")
        try f.save(path: path)
        return (dir, path)
    }

    func load(_ path: String) throws -> (FittedPipeline, [String]) {
        var warnings: [String] = []
        let p = try FittedPipeline.load(path: path) { warnings.append($0) }
        return (p, warnings)
    }

    /// Every value of every index gets the same id as in `expected`, and unknown values 0.
    func assertSameIDs(_ got: FittedPipeline, _ expected: FittedPipeline, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.stringIndices.count, expected.stringIndices.count, file: file, line: line)
        for (g, e) in zip(got.stringIndices, expected.stringIndices) {
            for v in e.values + ["never seen", ""] where e.id(of: v) != g.id(of: v) {
                return XCTFail("'\(v)': id \(g.id(of: v)), expected \(e.id(of: v))", file: file, line: line)
            }
        }
    }

    func testSaveWritesTheJSONAsBeforeAndASidecarThatLoadsTheSamePipeline() throws {
        let f = try fitted()
        let (dir, path) = try saved(f)
        _ = dir
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), try f.jsonData(fastStrings: false))
        let side = try Data(contentsOf: URL(fileURLWithPath: FittedPipeline.sidecarPath(path)))
        XCTAssertEqual(Array(side.prefix(8)), Array("HERDFPS1".utf8))
        let json = try Data(contentsOf: URL(fileURLWithPath: path))
        let (stash, ranges) = try json.withUnsafeBytes { j in try side.withUnsafeBytes { s in try FittedSidecar.decode(s, json: j) } }
        XCTAssertEqual(stash.arrays.count, 2)  // the index and the count encoding of "id"
        XCTAssertEqual(stash.arrays, StringArrays.extract(json).arrays.arrays)
        XCTAssertEqual(ranges.count, 2)
        XCTAssertTrue(stash.entries.allSatisfy { if case .table = $0 { return true } else { return false } })

        let (loaded, warnings) = try load(path)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(loaded, f)
        assertSameIDs(loaded, f)
        // The values, made from the lookup tables' bytes on first use, are the fitted ones.
        XCTAssertEqual(loaded.stringIndices.map(\.values), f.stringIndices.map(\.values))
        XCTAssertEqual(loaded.stringIndices.map(\.size), f.stringIndices.map(\.size))
        XCTAssertEqual(try loaded.jsonData(), try f.jsonData())
        // The prebuilt lookup tables number values as StringIndex's own insertion does.
        for (a, b) in zip(loaded.stringIndices, f.stringIndices) {
            for v in b.values { XCTAssertEqual(a.id(of: v), b.id(of: v)) }
        }
    }

    func testAPipelineWithoutLongArraysHasAnEmptySidecar() throws {
        let table = try FeatureTable([("n", Column(int64s: [1, 2, 3])), ("s", Column(strings: ["a", "b", "a"]))])
        let pipeline = try Pipeline.decode(json: try JSONValue(json: Data("""
        {"steps": [{"op": "categorify", "columns": ["s"]}, {"op": "min_max_scale", "columns": ["n"]}]}
        """.utf8)))
        let f = try pipeline.fit(table).1
        let (dir, path) = try saved(f)
        _ = dir
        let (loaded, warnings) = try load(path)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(loaded, f)
    }

    func testMissingSidecarReadsTheJSONSilently() throws {
        let f = try fitted()
        let (dir, path) = try saved(f)
        _ = dir
        try FileManager.default.removeItem(atPath: FittedPipeline.sidecarPath(path))
        let (loaded, warnings) = try load(path)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(loaded, f)
    }

    func testStaleSidecarIsReportedAndTheJSONsValuesWin() throws {
        let f = try fitted()
        let (dir, path) = try saved(f)
        _ = dir
        // Swap two index values in the JSON by hand (same length, same layout): the sidecar still
        // holds the old order, so using it would give both values the wrong id.
        var json = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        let index = f.stringIndices.first { $0.columns == ["id"] }!
        let a = index.values.first { $0.count == 16 }!, b = index.values.last { $0.count == 16 && $0 != a }!
        json = json.replacingOccurrences(of: "\"\(a)\"", with: "\"@@\"").replacingOccurrences(of: "\"\(b)\"", with: "\"\(a)\"")
            .replacingOccurrences(of: "\"@@\"", with: "\"\(b)\"")
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        let expected = try FittedPipeline.decode(Data(json.utf8), source: "edited")
        XCTAssertNotEqual(expected, f)

        let (loaded, warnings) = try load(path)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings.first?.contains("another version") ?? false, "\(warnings)")
        XCTAssertEqual(loaded, expected)
        assertSameIDs(loaded, expected)
        let edited = loaded.stringIndices.first { $0.columns == ["id"] }!
        XCTAssertEqual(edited.id(of: a), index.id(of: b))
    }

    func testDamagedSidecarsAreReportedNeverUsedNeverACrash() throws {
        let f = try fitted()
        let (dir, path) = try saved(f)
        _ = dir
        let sidePath = FittedPipeline.sidecarPath(path)
        let good = try Data(contentsOf: URL(fileURLWithPath: sidePath))
        var variants: [(String, Data)] = [
            ("truncated", good.prefix(good.count - 9)),
            ("header only", good.prefix(48)),
            ("empty", Data()),
            ("extended", good + Data([0, 0, 0, 0, 0, 0, 0, 0])),
        ]
        // Single flipped bytes all over the file: header fields, the array table, offsets, values.
        for at in Array(stride(from: 0, to: good.count, by: max(1, good.count / 97))) + [8, 16, 24, 32, 40, 48, 56, 64, good.count - 1] {
            var d = good
            d[at] ^= 0x5A
            variants.append(("byte \(at) flipped", d))
        }
        for (what, data) in variants {
            try data.write(to: URL(fileURLWithPath: sidePath))
            let (loaded, warnings) = try load(path)
            XCTAssertEqual(loaded, f, what)
            XCTAssertEqual(warnings.count, 1, what)
            // A flip in the JSON's length or hash reads as stale; everything else as damage.
            XCTAssertTrue(warnings.allSatisfy { $0.contains("damaged") || $0.contains("another version") }, "\(what): \(warnings)")
        }
    }

    func testDecodeFromDataUsesTheSidecarOrFallsBack() throws {
        let f = try fitted()
        let (json, sidecar) = try f.files()
        var warnings: [String] = []
        XCTAssertEqual(try FittedPipeline.decode(json: json, sidecar: sidecar, source: "j", sidecarSource: "s") { warnings.append($0) }, f)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(try FittedPipeline.decode(json: json, sidecar: Data("nonsense".utf8), source: "j", sidecarSource: "s") { warnings.append($0) }, f)
        XCTAssertEqual(warnings.count, 1)
    }

    func testKeyTableFromOffsetsMatchesInsertion() throws {
        let keys = ["", "a", "b", "ab", "longer than sixty-four bytes, longer than sixty-four bytes, longer!", "é"] + (0..<3000).map { "k\($0)" }
        var inserted = KeyTable()
        var offsets = [0]
        var bytes: [UInt8] = []
        for k in keys {
            var s = k
            s.withUTF8 { _ = inserted.insert(UnsafeRawBufferPointer($0)) }
            bytes += Array(k.utf8)
            offsets.append(bytes.count)
        }
        let built = try XCTUnwrap(KeyTable(offsets: offsets, bytes: bytes))
        XCTAssertEqual(built.count, keys.count)
        for k in keys + ["missing", "k3000"] {
            var s = k
            s.withUTF8 { b in XCTAssertEqual(built.find(UnsafeRawBufferPointer(b)), inserted.find(UnsafeRawBufferPointer(b)), k) }
        }
        // A repeated key is refused.
        XCTAssertNil(KeyTable(offsets: [0, 1, 2, 3], bytes: Array("aba".utf8)))
    }

    /// XXH64 (seed 0) written byte by byte, as the specification states it: the reference for
    /// `ContentHash`.
    func referenceXXH64(_ b: [UInt8]) -> UInt64 {
        let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F, p3: UInt64 = 0x1656_67B1_9E37_79F9
        let p4: UInt64 = 0x85EB_CA77_C2B2_AE63, p5: UInt64 = 0x27D4_EB2F_1656_67C5
        func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
        func word(_ at: Int, _ n: Int) -> UInt64 { (0..<n).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
        func round(_ a: UInt64, _ x: UInt64) -> UInt64 { rotl(a &+ x &* p2, 31) &* p1 }
        var i = 0
        var h: UInt64 = p5
        if b.count >= 32 {
            var v = [p1 &+ p2, p2, 0, 0 &- p1]
            while i + 32 <= b.count {
                for k in 0..<4 { v[k] = round(v[k], word(i + 8 * k, 8)) }
                i += 32
            }
            h = rotl(v[0], 1) &+ rotl(v[1], 7) &+ rotl(v[2], 12) &+ rotl(v[3], 18)
            for k in 0..<4 { h = (h ^ round(0, v[k])) &* p1 &+ p4 }
        }
        h = h &+ UInt64(b.count)
        while i + 8 <= b.count { h = rotl(h ^ round(0, word(i, 8)), 27) &* p1 &+ p4; i += 8 }
        if i + 4 <= b.count { h = rotl(h ^ (word(i, 4) &* p1), 23) &* p2 &+ p3; i += 4 }
        while i < b.count { h = rotl(h ^ (UInt64(b[i]) &* p5), 11) &* p1; i += 1 }
        h = (h ^ (h >> 33)) &* p2
        h = (h ^ (h >> 29)) &* p3
        return h ^ (h >> 32)
    }

    func testContentHashIsXXH64() {
        func hash(_ b: [UInt8]) -> UInt64 { b.withUnsafeBytes { ContentHash.hash($0) } }
        // Published XXH64 values (seed 0).
        XCTAssertEqual(hash([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(hash(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        // Bytes 0…255 then "xyz" (an independent implementation of the specification).
        XCTAssertEqual(hash(Array(0...255) + Array("xyz".utf8)), 0x4872_3707_8C6C_3726)
        // Every length through several stripes and tails, against the plain loop.
        var rng = SystemRandomNumberGenerator()
        for n in 0...200 {
            let b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            XCTAssertEqual(hash(b), referenceXXH64(b), "length \(n)")
        }
    }
}
