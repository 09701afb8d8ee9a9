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
