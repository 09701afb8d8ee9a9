import Foundation
import HerdData
@testable import HerdFeatures
import HerdTensor
import XCTest

/// `LineParser` sizes a part's string bytes and list elements from its first lines
/// (`ColumnBuilder.reserveLike`); a guess too small or too large must not change what is read.
final class ParseReservationTests: XCTestCase {
    let schema = CSVSchema(columns: [
        .init(name: "s", type: .string),
        .init(name: "tags", type: .stringList, listSeparator: "\t"),
        .init(name: "ids", type: .int64List, listSeparator: "|"),
        .init(name: "x", type: .double),
    ], separator: "\u{01}", header: false)

    func testMisleadingFirstLinesReadLikeAPlainSplit() throws {
        let dir = try TemporaryDirectory()
        var rng = SplitMix64(seed: 5)
        func pick(_ k: Int) -> Int { Int(rng.next() % UInt64(k)) }
        for (name, shortFirst) in [("grow", true), ("shrink", false)] {
            var lines: [String] = []
            for i in 0..<3000 {
                let long = (i >= ColumnBuilder.sampleLines) == shortFirst  // the sampled lines are unlike the rest
                let sLen = long ? 20 + pick(60) : pick(3)
                let s = String((0..<sLen).map { _ in Character(UnicodeScalar(UInt8(97 + pick(26)))) })
                let tags = (0..<(long ? 1 + pick(9) : pick(2))).map { _ in "t\(pick(1000))" }
                let ids = (0..<(long ? 1 + pick(7) : 1)).map { _ in String(pick(100_000) - 50_000) }
                lines.append([s, tags.joined(separator: "\t"), ids.joined(separator: "|"), String(Double(i) / 8)].joined(separator: "\u{01}"))
            }
            let path = try dir.write("\(name).txt", lines.joined(separator: "\n") + "\n")
            for partBytes in [1 << 20, 9000] {  // one part, and parts of a few hundred lines
                let (t, s) = try CSVReader(schema: schema, partBytes: partBytes).read(path: path)
                XCTAssertEqual(s.rows, lines.count)
                // Plain loop: split every line by hand.
                for (r, line) in lines.enumerated() {
                    let f = line.split(separator: "\u{01}", omittingEmptySubsequences: false).map(String.init)
                    XCTAssertEqual(t["s"][r], f[0].isEmpty ? .null : .string(f[0]), "\(name) row \(r)")
                    let tags = f[1].split(separator: "\t", omittingEmptySubsequences: false).map { Value.string(String($0)) }
                    XCTAssertEqual(t["tags"][r], f[1].isEmpty ? .null : .list(tags), "\(name) row \(r)")
                    XCTAssertEqual(t["ids"][r], .list(f[2].split(separator: "|").map { .int(Int64($0)!) }), "\(name) row \(r)")
                    XCTAssertEqual(t["x"][r], .double(Double(f[3])!))
                }
            }
        }
    }
}

/// `FeatureTable.index` sorts packed (count, 8-byte prefix) records; it must order like a plain
/// sort by descending count, then ascending bytes — prefixes that tie, short keys, NUL bytes.
final class StringIndexOrderTests: XCTestCase {
    func testIndexOrderEqualsAPlainSort() throws {
        var rng = SplitMix64(seed: 9)
        func pick(_ k: Int) -> Int { Int(rng.next() % UInt64(k)) }
        var table = KeyTable()
        var counts: [Int] = []
        var keys: [[UInt8]] = []
        let stems: [[UInt8]] = [[], [0], [97], [97, 0], [97, 0, 0], Array("abcdefgh".utf8), Array("abcdefg".utf8) + [0],
                                Array("abcdefghX".utf8), Array("abcdefghXY".utf8), Array("abcdefgh".utf8) + [0]]
        var candidates = stems
        for _ in 0..<3000 {
            var k = pick(2) == 0 ? Array("abcdefgh".utf8) : []  // many share their first 8 bytes
            k += (0..<pick(12)).map { _ in UInt8([0, 1, 97, 98, 126][pick(5)]) }
            candidates.append(k)
        }
        for k in candidates {
            let (i, inserted) = k.withUnsafeBytes { table.insert($0) }
            if inserted {
                keys.append(k)
                counts.append(1 + pick(4))  // many count ties
            } else {
                counts[i] += 1
            }
        }
        for limit in [1, 3] {
            let (index, ids) = try FeatureTable.index(["c"], table, counts, freqLimit: limit)
            // Plain loop: filter, then sort by (count desc, bytes asc) comparing byte by byte.
            let expected = (0..<keys.count).filter { counts[$0] >= limit }.sorted { a, b in
                if counts[a] != counts[b] { return counts[a] > counts[b] }
                return keys[a].lexicographicallyPrecedes(keys[b])
            }
            XCTAssertEqual(index.values, expected.map { String(decoding: keys[$0], as: UTF8.self) })
            var expectedIds = [Int64](repeating: 0, count: keys.count)
            for (rank, k) in expected.enumerated() { expectedIds[k] = Int64(rank + 1) }
            XCTAssertEqual(ids, expectedIds)
            for (rank, k) in expected.enumerated() {
                XCTAssertEqual(keys[k].withUnsafeBytes { index.id($0) }, Int64(rank + 1))
            }
            XCTAssertEqual(Array("zz-unknown".utf8).withUnsafeBytes { index.id($0) }, 0)
            // The fitted index equals one rebuilt from its values (as `--apply` loads it).
            XCTAssertEqual(index, try StringIndex(columns: ["c"], values: index.values, freqLimit: limit))
        }
    }
}

/// `cutBins` (edges) and `joinList` split rows across workers; they must equal plain loops.
final class ParallelColumnOpsTests: XCTestCase {
    func testCutBinsAndJoinListEqualPlainLoops() throws {
        var rng = SplitMix64(seed: 21)
        func pick(_ k: Int) -> Int { Int(rng.next() % UInt64(k)) }
        let n = 100_003  // several worker ranges
        var ints: [Int64?] = [], doubles: [Double?] = [], lists: [[String]?] = []
        let words = ["", "Photo", "GIF", "Video", "ab\u{e9}"]
        for _ in 0..<n {
            ints.append(pick(9) == 0 ? nil : Int64(pick(2_000_000)) - 1000)
            doubles.append(pick(9) == 0 ? nil : Double(pick(4_000_000)) / 3 - 100)
            lists.append(pick(6) == 0 ? nil : (0..<pick(5)).map { _ in words[pick(words.count)] })
        }
        let t = try FeatureTable([("i", Column(int64s: ints)), ("d", Column(doubles: doubles)), ("l", Column(stringLists: lists))])
        let bins: [Double] = [1, 100, 1000, 10000, 100000, 1000000]
        let out = try t.cutBins(["i", "d"], edges: ["i": bins, "d": bins], outColumns: ["i", "d_bin"])
        func plainBin(_ x: Double) -> Int64 { Int64(bins.filter { $0 <= x }.count) }
        XCTAssertEqual(out["i"].int64Values, ints.map { plainBin(Double($0 ?? 0)) })
        XCTAssertEqual(out["d_bin"].int64Values, doubles.map { plainBin($0 ?? 0) })
        XCTAssertEqual(out["i"].nullCount, ints.filter { $0 == nil }.count)
        XCTAssertFalse(out.contains("d"))
        for limit in [nil, 1, 2] as [Int?] {
            for sep in ["_", "", "::"] {
                let j = try t.joinList(["l"], separator: sep, limit: limit)
                let expected = lists.map { l -> Value in
                    let all = l ?? []
                    let kept = limit.map { Array(all.prefix($0)) } ?? all
                    return .string(kept.joined(separator: sep))
                }
                XCTAssertEqual(j["l"].values, expected, "limit \(String(describing: limit)) separator '\(sep)'")
            }
        }
    }
}
