import Foundation
@testable import HerdServing
import HerdTensor
import XCTest

final class KMeansTests: XCTestCase {
    /// Spherical k-means (the IVF quantizer of inner-product indexes) against a plain loop: the same
    /// seeding (k distinct rows by a partial Fisher–Yates shuffle of SplitMix64 draws), assignment
    /// by the largest inner product, centroid = mean of its rows scaled to unit norm.
    func testSphericalTrainingMatchesPlainLoop() {
        let n = 400, d = 6, k = 5, iterations = 4
        let x = clusteredVectors(count: n, dimension: d, clusters: 5, noise: 0.6, seed: 17)
        let got = x.withUnsafeBufferPointer { KMeans.train($0.baseAddress!, n: n, d: d, k: k, iterations: iterations, seed: 9, spherical: true) }

        var rng = SplitMix64(seed: 9)
        var order = Array(0..<n)
        for i in 0..<k { order.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        var c = (0..<k).map { Array(x[(order[$0] * d)..<((order[$0] + 1) * d)]) }
        for _ in 0..<iterations {
            var sums = [[Double]](repeating: [Double](repeating: 0, count: d), count: k), counts = [Int](repeating: 0, count: k)
            for r in 0..<n {
                var best = -Float.infinity, arg = 0
                for j in 0..<k {
                    var s: Float = 0
                    for t in 0..<d { s += x[r * d + t] * c[j][t] }
                    if s > best { best = s; arg = j }
                }
                counts[arg] += 1
                for t in 0..<d { sums[arg][t] += Double(x[r * d + t]) }
            }
            XCTAssertFalse(counts.contains(0), "the reference does not re-seed empty clusters; pick other data")
            for j in 0..<k {
                let mean = sums[j].map { $0 / Double(counts[j]) }
                let norm = mean.map { $0 * $0 }.reduce(0, +).squareRoot()
                c[j] = mean.map { Float($0 / norm) }
            }
        }
        for j in 0..<k {
            var norm: Float = 0
            for t in 0..<d {
                XCTAssertEqual(got[j * d + t], c[j][t], accuracy: 1e-4, "centroid \(j)")
                norm += got[j * d + t] * got[j * d + t]
            }
            XCTAssertEqual(norm, 1, accuracy: 1e-5)
        }
    }

    /// L2 training is unchanged: centroids are plain means (not unit norm).
    func testL2TrainingKeepsMeans() {
        let n = 300, d = 4
        let x = clusteredVectors(count: n, dimension: d, clusters: 3, noise: 1.0, seed: 4)
        let c = x.withUnsafeBufferPointer { KMeans.train($0.baseAddress!, n: n, d: d, k: 3, iterations: 3, seed: 1) }
        let norms = (0..<3).map { j in (0..<d).map { c[j * d + $0] * c[j * d + $0] }.reduce(0, +).squareRoot() }
        XCTAssertTrue(norms.allSatisfy { $0 < 0.999 }, "means of unit vectors are shorter than 1: \(norms)")
    }

    /// On broad clusters (each spread over several lists), an inner-product IVF probing an eighth
    /// of its lists finds nearly all of the exact top 10.
    func testInnerProductIVFOnBroadClusters() throws {
        let n = 8000, dim = 32
        let x = clusteredVectors(count: n, dimension: dim, clusters: 12, seed: 21)
        let q = clusteredVectors(count: 200, dimension: dim, clusters: 12, seed: 21 &+ 5)
        let ids = (0..<n).map { Int64($0) }
        let flat = try makeIndex(spec: "Flat", dimension: dim, metric: .innerProduct)
        try flat.add(ids: ids, vectors: x)
        let ivf = try makeIndex(spec: "IVF128,Flat,nprobe=16", dimension: dim, metric: .innerProduct)
        try ivf.add(ids: ids, vectors: x)
        let r = recall(try ivf.search(batch: q, k: 10), try flat.search(batch: q, k: 10))
        XCTAssertGreaterThan(r, 0.9, "recall@10 \(r)")
    }
}
