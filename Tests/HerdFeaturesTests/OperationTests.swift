import Foundation
@testable import HerdFeatures
import XCTest

final class OperationTests: XCTestCase {
    func testSelectRenameDropFilterSplit() throws {
        let t = try sampleTable()
        XCTAssertEqual(try t.select(["score", "user"]).names, ["score", "user"])
        XCTAssertThrowsError(try t.select(["nope"])) {
            XCTAssertEqual("\($0)", "no column named 'nope' (columns: user, count, score, tags)")
        }
        XCTAssertEqual(try t.rename(["user": "uid"]).names, ["uid", "count", "score", "tags"])
        XCTAssertEqual(try t.drop(["tags", "count"]).names, ["user", "score"])
        let f = try t.filter("count", numeric: { $0 > 0 })
        XCTAssertEqual(f["count"].values, [.int(3), .int(10), .int(7)])
        XCTAssertEqual(f["tags"].values, [.list([.string("x"), .string("y")]), .list([.string("y")]), .list([.string("y")])])
        let g = try t.filter("user") { $0 == .null || $0 == .string("c") }
        XCTAssertEqual(g["count"].values, [.int(10), .int(0)])

        let big = try FeatureTable([("i", Column(int64s: (0..<1000).map { Int64($0) }))])
        let parts = try big.randomSplit([0.8, 0.2], seed: 7)
        XCTAssertEqual(parts[0].rowCount + parts[1].rowCount, 1000)
        XCTAssertEqual(Double(parts[0].rowCount), 800, accuracy: 50)
        XCTAssertEqual(Set(parts[0]["i"].int64Values!).intersection(parts[1]["i"].int64Values!), [])
        XCTAssertEqual(parts[0]["i"].int64Values, parts[0]["i"].int64Values!.sorted())  // order kept
        XCTAssertEqual(try big.randomSplit([0.8, 0.2], seed: 7), parts)  // seeded
        XCTAssertNotEqual(try big.randomSplit([0.8, 0.2], seed: 8)[0], parts[0])
    }

    func testFillnaClipLogCast() throws {
        let t = try sampleTable()
        let filled = try t.fillna(.int(0))  // every column that takes an int: count and score
        XCTAssertEqual(filled["count"].values, [3, 0, -2, 10, 0, 7].map { .int($0) })
        XCTAssertEqual(filled["score"].values, [0.5, 1.5, 0, -1, 2, 4].map { .double($0) })
        XCTAssertEqual(filled["user"].nullCount, 1)
        XCTAssertEqual(try t.fillna(.string("?"), columns: ["user"])["user"][3], .string("?"))
        let perColumn = try t.fillna(["user": .string("-"), "score": .double(9.5), "tags": .list([])])
        XCTAssertEqual(perColumn["user"][3], .string("-"))
        XCTAssertEqual(perColumn["score"][2], .double(9.5))
        XCTAssertEqual(perColumn["tags"][2], .list([]))
        XCTAssertEqual(perColumn["count"].nullCount, 1)
        XCTAssertThrowsError(try t.fillna(.string("?"), columns: ["count"])) {
            XCTAssertEqual("\($0)", "fillna: cannot fill column 'count' of type int64 with value ?")
        }
        let clipped = try t.clip(["count", "score"], min: 0, max: 5.5)
        XCTAssertEqual(clipped["count"].values, [.int(3), .null, .int(0), .int(5), .int(0), .int(5)])
        XCTAssertEqual(clipped["score"].values, [.double(0.5), .double(1.5), .null, .double(0), .double(2), .double(4)])
        let logged = try t.log(["count"])
        XCTAssertEqual(logged["count"].values, [.double(Foundation.log(4)), .null, .double(0), .double(Foundation.log(11)), .double(0), .double(Foundation.log(8))])
        let cast = try t.cast(["score"], to: .int64).cast(["count"], to: .string)
        XCTAssertEqual(cast["score"].values, [.int(0), .int(1), .null, .int(-1), .int(2), .int(4)])
        XCTAssertEqual(cast["count"][2], .string("-2"))
        let back = try FeatureTable([("s", Column(strings: ["12", "x", nil, "-3"]))]).cast(["s"], to: .int64)
        XCTAssertEqual(back["s"].values, [.int(12), .null, .null, .int(-3)])
    }

    func testOrderByAndShow() throws {
        let t = try sampleTable()
        XCTAssertEqual(try t.orderBy(["user", "count"])["count"].values, [.int(10), .int(-2), .int(3), .null, .int(7), .int(0)])
        XCTAssertEqual(try t.orderBy(["score"], ascending: false)["score"].values, [4, 2, 1.5, 0.5, -1].map { .double($0) } + [.null])
        let text = try t.select(["user", "count"]).show(2)
        XCTAssertEqual(text, """
        user | count
        -----+------
        a    | 3    
        b    | null 
        6 rows × 2 columns (first 2 shown)
        """)
    }

    func testNotNullAndListLength() throws {
        let t = try sampleTable()
        let d = try t.notNull(["score"], outColumns: ["has_score"]).listLength(["tags"])
        XCTAssertEqual(d["has_score"].int64Values, [1, 1, 0, 1, 1, 1])
        XCTAssertEqual(d["tags"].int64Values, [2, 0, 0, 1, 3, 1])
        XCTAssertThrowsError(try t.listLength(["user"])) {
            XCTAssertEqual("\($0)", "column 'user' has type string, expected a list column")
        }
    }

    func testMinMaxStandardScaleAndCutBins() throws {
        let t = try sampleTable()
        let (scaled, stats) = try t.minMaxScale(["count", "score"])
        XCTAssertEqual(stats.ranges["count"], .init(min: -2, max: 10))
        XCTAssertEqual(scaled["count"].values, [5.0 / 12, nil, 0, 1, 2.0 / 12, 9.0 / 12].map { $0.map { Value.double($0) } ?? .null })
        // Re-applied to another table with the fitted range (values outside scale outside [0, 1]).
        let other = try FeatureTable([("count", Column(int64s: [4, 22])), ("score", Column(doubles: [-1, 9]))])
        let applied = try stats.apply(other)
        XCTAssertEqual(applied["count"].values, [.double(0.5), .double(2)])
        XCTAssertEqual(applied["score"].values, [.double(0), .double(2)])
        let (std, moments) = try t.standardScale(["score"])
        // score non-null: 0.5 1.5 -1 2 4 → mean 1.4, sample variance 3.425
        XCTAssertEqual(moments.moments["score"]!.mean, 1.4, accuracy: 1e-12)
        XCTAssertEqual(moments.moments["score"]!.std, 3.425.squareRoot(), accuracy: 1e-12)
        if case .double(let x) = std["score"][5] { XCTAssertEqual(x, 2.6 / 3.425.squareRoot(), accuracy: 1e-12) } else { XCTFail() }
        // Friesian cut_bins [1, 1e2, 1e3]: x<1 → 0, [1,100) → 1, [100,1000) → 2, ≥1000 → 3.
        let counts = try FeatureTable([("n", Column(int64s: [0, 1, 99, 100, 5000, nil, -7]))])
        let binned = try counts.cutBins(["n"], bins: [1, 100, 1000])
        XCTAssertEqual(binned.names, ["n_bin"])  // Friesian: <column>_bin, input dropped
        XCTAssertEqual(binned["n_bin"].values, [.int(0), .int(1), .int(1), .int(2), .int(3), .null, .int(0)])
        XCTAssertEqual(try counts.cutBins(["n"], bins: [1], outColumns: ["n"])["n"].values, ([0, 1, 1, 1, 1, nil, 0] as [Int64?]).map { $0.map { Value.int($0) } ?? .null })
        XCTAssertEqual(try counts.cutBins(["n"], bins: [1], outColumns: ["b"], drop: false).names, ["n", "b"])
        // A bin count: equal-width over [min, max] = [-7, 5000], 2 bins → edges -7, 2496.5, 5000.
        let (counted, edges) = try counts.cutBins(["n"], binCount: 2)
        XCTAssertEqual(edges["n"], [-7, 2496.5, 5000])
        XCTAssertEqual(counted["n_bin"].values, ([1, 1, 1, 1, 3, nil, 1] as [Int64?]).map { $0.map { Value.int($0) } ?? .null })
        XCTAssertThrowsError(try counts.cutBins(["n"], bins: [3, 2]))
    }

    func testCategorifySharedIndexTiesFreqLimitListsAndUnknowns() throws {
        let t = try FeatureTable([
            ("a", Column(strings: ["u1", "u2", "u3", nil, "u2", "u4"])),
            ("b", Column(strings: ["u3", "u1", "u5", "u1", nil, "u5"])),
            ("tags", Column(stringLists: [["x", "y"], [], nil, ["y", "q"], ["z", "y", "x"], ["w"]])),
        ])
        // Shared over a and b: u1 ×3, u2 ×2, u3 ×2, u5 ×2, u4 ×1 → ties by bytes: u2 < u3 < u5.
        let (encoded, indices) = try t.categorify([["a", "b"], ["tags"]])
        XCTAssertEqual(indices[0].values, ["u1", "u2", "u3", "u5", "u4"])
        XCTAssertEqual(indices[0].size, 6)
        XCTAssertEqual(encoded["a"].int64Values, [1, 2, 3, 0, 2, 5])
        XCTAssertEqual(encoded["a"].nullCount, 0)
        XCTAssertEqual(encoded["b"].int64Values, [3, 1, 4, 1, 0, 4])
        // tags: y ×3, x ×2, q w z ×1.
        XCTAssertEqual(indices[1].values, ["y", "x", "q", "w", "z"])
        XCTAssertEqual(encoded["tags"].values, [[2, 1], [], [], [1, 3], [5, 1, 2], [4]].map { .list($0.map { .int($0) }) })
        // freq limit 2: u4 drops out; x and y stay.
        let limited = try t.genStringIndex([["a", "b"], ["tags"]], freqLimit: 2)
        XCTAssertEqual(limited[0].values, ["u1", "u2", "u3", "u5"])
        XCTAssertEqual(limited[1].values, ["y", "x"])
        // Encode another table with the saved index: unknown → 0, also inside lists.
        let test = try FeatureTable([
            ("a", Column(strings: ["u5", "zz", nil])),
            ("tags", Column(stringLists: [["q", "new"], nil, ["x"]])),
        ])
        let e2 = try test.encode(["a"], with: limited[0]).encode(["tags"], with: limited[1])
        XCTAssertEqual(e2["a"].int64Values, [4, 0, 0])
        XCTAssertEqual(e2["tags"].values, [.list([.int(0), .int(0)]), .list([]), .list([.int(2)])])
        // JSON round trip of an index.
        let json = try JSONEncoder().encode(indices[0])
        XCTAssertEqual(try JSONDecoder().decode(StringIndex.self, from: json), indices[0])
        // int64 columns are indexed by their decimal text.
        let ints = try FeatureTable([("n", Column(int64s: [-5, 7, 7, nil]))])
        let (ei, ii) = try ints.categorify([["n"]])
        XCTAssertEqual(ii[0].values, ["7", "-5"])
        XCTAssertEqual(ei["n"].int64Values, [2, 1, 1, 0])
    }

    func testHashEncodeMatchesFriesianMD5() throws {
        // Reference: int(hashlib.md5(str(x).encode()).hexdigest(), 16) % bins, computed in Python.
        let t = try FeatureTable([
            ("s", Column(strings: ["a", nil, String(repeating: "ab", count: 40)])),
            ("n", Column(int64s: [12, 12, nil])),
        ])
        let h = try t.hashEncode(["s", "n"], bins: 1000)
        XCTAssertEqual(h["s"].int64Values, [497, 316, 81])
        XCTAssertEqual(h["n"].int64Values, [112, 112, 316])
        XCTAssertEqual(MD5.digest(UnsafeRawBufferPointer(start: nil, count: 0)).map { String(format: "%02x", $0) }.joined(),
                       "d41d8cd98f00b204e9800998ecf8427e")
        // cross: concat("Photo", "en") = "Photoen" → 467 of 600; a null anywhere → "None".
        let c = try FeatureTable([
            ("media", Column(strings: ["Photo", "Photo"])), ("language", Column(strings: ["en", nil])),
        ]).crossHashEncode(["media", "language"], bins: 600)
        XCTAssertEqual(c.names, ["media", "language", "crossed_media_language"])
        XCTAssertEqual(c["crossed_media_language"].int64Values, [467, 316])
        let cc = try c.crossColumns([["media", "language"]], sizes: [600])
        XCTAssertEqual(cc["media_language"], c["crossed_media_language"])
    }
}
