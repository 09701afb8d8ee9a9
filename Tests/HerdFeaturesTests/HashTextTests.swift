@testable import HerdFeatures
import HerdTensor
import XCTest

/// `hashEncode` / `crossHashEncode` (texts read through `TextSource` pointers, a per-worker
/// bucket cache) against a plain loop over `appendHashText` and `MD5.bucket`.
final class HashTextTests: XCTestCase {
    func plainBuckets(_ t: FeatureTable, _ names: [String], bins: Int) -> [Int64] {
        (0..<t.rowCount).map { r in
            var text: [UInt8] = []
            if names.contains(where: { t[$0].isNull(r) }) {
                text += "None".utf8
            } else {
                for n in names { t.appendHashText(t[n], r, to: &text) }
            }
            return text.withUnsafeBytes { Int64(MD5.bucket($0, UInt64(bins))) }
        }
    }

    func testHashingEqualsPlainLoop() throws {
        var rng = SplitMix64(seed: 21)
        let n = 5_000  // several workers
        func pick(_ k: UInt64) -> Int { Int(rng.next() % k) }
        var s: [String?] = [], e: [String] = [], i: [Int64?] = [], d: [Double?] = [], full: [Int64] = []
        for _ in 0..<n {
            s.append(pick(7) == 0 ? nil : ["Photo", "Video", "", "GIF_Photo", String(repeating: "z", count: 70)][pick(5)])
            e.append(pick(3) == 0 ? "" : "lang\(pick(80))")
            i.append(pick(6) == 0 ? nil : Int64(pick(4000)) - 2000)
            d.append(pick(5) == 0 ? nil : [0.25, 1.0, -3.5, 1e-7][pick(4)])
            full.append(Int64.min + Int64(pick(3)))
        }
        let t = try FeatureTable([("s", Column(strings: s)), ("e", Column(strings: e)), ("i", Column(int64s: i)),
                                  ("d", Column(doubles: d)), ("f", Column(type: .int64, data: .int64(full)))])
        let h = try t.hashEncode(["s", "e", "i", "d", "f"], bins: 997)
        for name in ["s", "e", "i", "d", "f"] {
            XCTAssertEqual(h[name].int64Values, plainBuckets(t, [name], bins: 997), name)
        }
        for names in [["s", "e"], ["i", "s", "d"], ["f", "e"]] {
            let c = try t.crossHashEncode(names, bins: 600, name: "x")
            XCTAssertEqual(c["x"].int64Values, plainBuckets(t, names, bins: 600), "\(names)")
        }
    }
}

/// `cutBins` (boundaries counted without branches when few) against a plain binary search.
final class CutBinsKernelTests: XCTestCase {
    func testCutBinsEqualsBinarySearch() throws {
        var rng = SplitMix64(seed: 4)
        let special: [Double] = [.nan, .infinity, -.infinity, 0, -0.0, 1, 100, 1e7, 99.999]
        let xs: [Double] = (0..<3_000).map { i in
            i % 10 == 0 ? special[i / 10 % special.count] : Double(Int64(rng.next() % 40_000_000)) / 3 - 1000
        }
        let ints: [Int64] = xs.map { $0.isFinite ? Int64($0) : 7 }
        func plain(_ x: Double, _ edges: [Double]) -> Int64 {
            var lo = 0, hi = edges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if edges[mid] <= x { lo = mid + 1 } else { hi = mid }
            }
            return Int64(lo)
        }
        let t = try FeatureTable([("d", Column(type: .double, data: .double(xs))), ("i", Column(type: .int64, data: .int64(ints)))])
        let few: [Double] = [1, 100, 1000, 10000, 100000, 1000000, 10000000]
        let many = (0..<40).map { Double($0 * $0) * 7000 }  // above linearBinLimit
        for edges in [few, many, [5.0]] {
            let out = try t.cutBins(["d", "i"], bins: edges)
            XCTAssertEqual(out["d_bin"].int64Values, xs.map { plain($0, edges) }, "\(edges.count) edges")
            XCTAssertEqual(out["i_bin"].int64Values, ints.map { plain(Double($0), edges) }, "\(edges.count) edges")
        }
    }
}
