import Foundation
@testable import HerdServing
import XCTest

/// The shim's HNSW search (the call's ef, no metric counters) against hnswlib's own `searchKnn`.
final class HNSWSearchTests: XCTestCase {
    func testSearchEqualsHnswlibSearchKnn() throws {
        let n = 4000, dim = 16
        var x = clusteredVectors(count: n, dimension: dim, clusters: 30, seed: 17)
        // Exact duplicates: equal distances, so the order of ties is checked too.
        for i in 0..<200 { for j in 0..<dim { x[(n - 1 - i) * dim + j] = x[i * dim + j] } }
        let q = clusteredVectors(count: 150, dimension: dim, clusters: 30, seed: 23) + Array(x[0..<(20 * dim)])
        for metric in [ANNMetric.innerProduct, .l2] {
            let index = try HNSWIndex(dimension: dim, metric: metric, m: 8, efConstruction: 60, efSearch: 32)
            try index.add(ids: (0..<n).map { Int64($0) * 3 + 1 }, vectors: x)
            let queries = q.count / dim
            for (k, ef) in [(1, 1), (10, 32), (10, 10), (50, 64), (200, 200), (300, 100), (5000, 10)] {
                var ids = [Int64](repeating: -1, count: k), refIDs = ids
                var scores = [Float](repeating: .nan, count: k), refScores = scores
                for qi in 0..<queries {
                    let found = q.withUnsafeBufferPointer { index.searchRaw($0.baseAddress! + qi * dim, k: k, ef: ef, ids: &ids, scores: &scores) }
                    let reference = q.withUnsafeBufferPointer {
                        index.searchReference($0.baseAddress! + qi * dim, k: k, ef: ef, ids: &refIDs, scores: &refScores)
                    }
                    XCTAssertEqual(found, reference, "\(metric) k \(k) ef \(ef) query \(qi)")
                    XCTAssertEqual(Array(ids.prefix(found)), Array(refIDs.prefix(reference)), "\(metric) k \(k) ef \(ef) query \(qi)")
                    XCTAssertEqual(Array(scores.prefix(found)).map(\.bitPattern), Array(refScores.prefix(reference)).map(\.bitPattern))
                }
            }
        }
        // An empty index finds nothing.
        let empty = try HNSWIndex(dimension: 2, metric: .l2)
        var ids = [Int64](repeating: 0, count: 3), scores = [Float](repeating: 0, count: 3)
        XCTAssertEqual([Float(1), 2].withUnsafeBufferPointer { empty.searchRaw($0.baseAddress!, k: 3, ef: 8, ids: &ids, scores: &scores) }, 0)
    }
}
