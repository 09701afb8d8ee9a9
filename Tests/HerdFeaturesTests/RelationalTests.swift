import HerdTensor
import Foundation
@testable import HerdFeatures
import XCTest

final class RelationalTests: XCTestCase {
    func testGroupByAggAndDropDuplicates() throws {
        let t = try sampleTable()  // user: a b a nil c b; count: 3 nil -2 10 0 7; score: .5 1.5 nil -1 2 4
        let g = try t.groupBy(["user"]).agg([.count, .mean("count"), .sum("score"), .min("score"), .max("count")])
        XCTAssertEqual(g.names, ["user", "count", "avg(count)", "sum(score)", "min(score)", "max(count)"])
        XCTAssertEqual(g["user"].values, [.string("a"), .string("b"), .null, .string("c")])
        XCTAssertEqual(g["count"].int64Values, [2, 2, 1, 1])
        XCTAssertEqual(g["avg(count)"].values, [.double(0.5), .double(7), .double(10), .double(0)])
        XCTAssertEqual(g["sum(score)"].values, [.double(0.5), .double(5.5), .double(-1), .double(2)])
        XCTAssertEqual(g["min(score)"].values, [.double(0.5), .double(1.5), .double(-1), .double(2)])
        XCTAssertEqual(g["max(count)"].values, [.double(3), .double(7), .double(10), .double(0)])

        let d = try FeatureTable([
            ("a", Column(int64s: [1, 1, 2, 1, nil, nil])),
            ("b", Column(strings: ["x", "x", "x", "y", "z", "z"])),
        ])
        XCTAssertEqual(try d.dropDuplicates()["b"].values, ["x", "x", "y", "z"].map { .string($0) })
        XCTAssertEqual(try d.dropDuplicates(["a"])["a"].values, [.int(1), .int(2), .null])
    }

    func testInnerAndLeftJoin() throws {
        let users = try FeatureTable([
            ("uid", Column(int64s: [1, 2, 3, nil])),
            ("name", Column(strings: ["ann", "bob", "cy", "nobody"])),
        ])
        let events = try FeatureTable([
            ("uid", Column(int64s: [2, 1, 2, 9, nil])),
            ("item", Column(int64s: [20, 10, 21, 90, 0])),
        ])
        let inner = try events.join(users, on: ["uid"])
        XCTAssertEqual(inner.names, ["uid", "item", "name"])
        XCTAssertEqual(inner["item"].int64Values, [20, 10, 21])
        XCTAssertEqual(inner["name"].values, ["bob", "ann", "bob"].map { .string($0) })
        let left = try events.join(users, on: ["uid"], how: .left)
        XCTAssertEqual(left["item"].int64Values, [20, 10, 21, 90, 0])
        XCTAssertEqual(left["name"].values, [.string("bob"), .string("ann"), .string("bob"), .null, .null])
        // One-to-many: a user with two profiles yields two rows, in right order.
        let multi = try users.union(try FeatureTable([("uid", Column(int64s: [2])), ("name", Column(strings: ["bobby"]))]))
        XCTAssertEqual(try events.join(multi, on: ["uid"])["name"].values, ["bob", "bobby", "ann", "bob", "bobby"].map { .string($0) })
        XCTAssertThrowsError(try events.join(events, on: ["uid"])) {
            XCTAssertEqual("\($0)", "join: both tables have a column 'item'; rename one first")
        }
        XCTAssertThrowsError(try events.join(try users.cast(["uid"], to: .double), on: ["uid"])) {
            XCTAssertEqual("\($0)", "join: key 'uid' is int64 on the left and double on the right")
        }
    }

    func testTargetEncodeSmoothingAndOutOfFold() throws {
        let t = try FeatureTable([
            ("cat", Column(strings: ["a", "a", "b", "b", "a"])),
            ("label", Column(int64s: [1, 0, 1, 1, 0])),
        ])
        // kfold 1: mean 0.6; a: (1 + 0.6) / (3 + 1) = 0.4; b: (2 + 0.6) / (2 + 1).
        let (whole, enc) = try t.targetEncode([["cat"]], targets: ["label"], smooth: 1, kfold: 1)
        XCTAssertEqual(whole["cat_te_label"].doubleValues!, [0.4, 0.4, 2.6 / 3, 2.6 / 3, 0.4], accuracy: 1e-12)
        // Re-applied: same keys same values, unknown → global mean.
        let other = try FeatureTable([("cat", Column(strings: ["b", "zz"]))])
        XCTAssertEqual(try enc.apply(other)["cat_te_label"].doubleValues!, [2.6 / 3, 0.6], accuracy: 1e-12)
        let json = try JSONEncoder().encode(enc)
        XCTAssertEqual(try JSONDecoder().decode(TargetEncoding.self, from: json), enc)

        // kfold 3: each row uses only the other folds' rows (same folds as the implementation).
        let n = 40
        let big = try FeatureTable([
            ("cat", Column(strings: (0..<n).map { "c\($0 % 3)" })),
            ("label", Column(int64s: (0..<n).map { Int64(($0 * 7) % 5 == 0 ? 1 : 0) })),
        ])
        let (oof, _) = try big.targetEncode([["cat"]], targets: ["label"], smooth: 2, kfold: 3, seed: 5)
        var rng = SplitMix64(seed: 5)
        let folds = (0..<n).map { _ in Int(rng.next() % 3) }
        let labels = big["label"].int64Values!.map(Double.init)
        let mean = labels.reduce(0, +) / Double(n)
        for r in 0..<n {
            let others = (0..<n).filter { $0 % 3 == r % 3 && folds[$0] != folds[r] }
            let expected = (others.map { labels[$0] }.reduce(0, +) + mean * 2) / (Double(others.count) + 2)
            XCTAssertEqual(oof["cat_te_label"].doubleValues![r], expected, accuracy: 1e-12)
        }
    }

    func testNegativeSamplesAndHistSeq() throws {
        let t = try FeatureTable([("user", Column(strings: ["u", "v"])), ("item", Column(int64s: [3, 1]))])
        let s = try t.addNegativeSamples(itemSize: 5, negNum: 2, seed: 9)
        XCTAssertEqual(s["user"].values, ["u", "u", "u", "v", "v", "v"].map { .string($0) })
        XCTAssertEqual(s["label"].int64Values, [1, 0, 0, 1, 0, 0])
        let items = s["item"].int64Values!
        XCTAssertEqual(items[0], 3)
        XCTAssertEqual(items[3], 1)
        for i in [1, 2] { XCTAssertTrue((1..<5).contains(items[i]) && items[i] != 3) }
        for i in [4, 5] { XCTAssertTrue((1..<5).contains(items[i]) && items[i] != 1) }
        XCTAssertEqual(try t.addNegativeSamples(itemSize: 5, negNum: 2, seed: 9), s)

        let h = try FeatureTable([
            ("user", Column(strings: ["a", "b", "a", "a", "b", "a"])),
            ("item", Column(int64s: [10, 20, 11, 12, 21, 13])),
            ("cat", Column(strings: ["x", "y", "x", "z", "y", "z"])),
            ("time", Column(int64s: [4, 1, 2, 3, 5, 9])),
        ])
        // a by time: 11 (t2), 12 (t3), 10 (t4), 13 (t9); b: 20 (t1), 21 (t5).
        let seq = try h.addHistSeq(["item", "cat"], userColumn: "user", sortColumn: "time", minLen: 1, maxLen: 2)
        XCTAssertEqual(seq["item"].int64Values, [10, 12, 21, 13])  // the first row of each user has no history
        XCTAssertEqual(seq["item_hist_seq"].values, [[11, 12], [11], [20], [12, 10]].map { .list($0.map { .int($0) }) })
        XCTAssertEqual(seq["cat_hist_seq"][0], .list([.string("x"), .string("z")]))
        let longer = try h.addHistSeq(["item"], userColumn: "user", sortColumn: "time", minLen: 3, maxLen: 10)
        XCTAssertEqual(longer["item_hist_seq"].values, [.list([.int(11), .int(12), .int(10)])])
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
