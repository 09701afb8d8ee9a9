@testable import HerdFeatures
import HerdTensor
import XCTest

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
