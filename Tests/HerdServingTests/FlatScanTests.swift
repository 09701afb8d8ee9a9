import Foundation
@testable import HerdServing
import HerdTensor
import XCTest

/// The exact index's single-query scan: the kernel against a plain loop, and a scan split across
/// cores against brute force.
final class FlatScanTests: XCTestCase {
    func testDotsKernelMatchesAPlainLoop() {
        var rng = SplitMix64(seed: 11)
        for d in [1, 3, 15, 16, 17, 31, 64, 128, 130] {
            for rows in [0, 1, 3, 4, 5, 8, 13] {
                let q = (0..<d).map { _ in rng.nextGaussian() }
                let x = (0..<(rows * d)).map { _ in rng.nextGaussian() }
                for scale: Float in [1, 2] {
                    var out = [Float](repeating: .nan, count: rows + 1)
                    out.withUnsafeMutableBufferPointer { o in
                        SIMDKernels.dots(query: q, rows: x, count: rows, dimension: d, scale: scale, into: o.baseAddress!)
                    }
                    for r in 0..<rows {
                        var expected: Double = 0
                        for i in 0..<d { expected += Double(q[i]) * Double(x[r * d + i]) }
                        expected *= Double(scale)
                        XCTAssertEqual(Double(out[r]), expected, accuracy: 1e-4 * max(1, abs(expected)), "d \(d) rows \(rows) row \(r)")
                    }
                    XCTAssertTrue(out[rows].isNaN, "writes only `rows` values (d \(d), rows \(rows))")
                }
            }
        }
    }

    /// An index large enough to be scanned on every core (`parallelScanFloats`), with the best
    /// rows planted in different parts and ties across the part boundary.
    func testParallelScanEqualsBruteForceAndOneScan() throws {
        let d = 32
        let n = FlatIndex.parallelScanFloats / d + 777
        var rng = SplitMix64(seed: 5)
        var x = (0..<(n * d)).map { _ in rng.nextGaussian() * 0.1 }
        let ids = (0..<n).map { Int64($0 * 3 + 2) }
        let q = (0..<d).map { _ in rng.nextGaussian() }
        // Scaled copies of the query near the start, the middle and the end (the best rows for both
        // metrics); two identical rows on each side of the middle (a tie: the earlier row must win,
        // as in one serial scan).
        for (row, factor) in [(5, 1.3), (n / 2 - 1, 1.2), (n / 2 + 1, 1.2), (n - 3, 1.25)] as [(Int, Float)] {
            for i in 0..<d { x[row * d + i] = q[i] * factor }
        }
        for metric in ANNMetric.allCases {
            let index = FlatIndex(dimension: d, metric: metric)
            try index.add(ids: ids, vectors: x)
            for k in [1, 2, 3, 10] {
                let got = try index.search(q, k: k)
                let expected = bruteForce(x, ids: ids, query: q, k: k, metric: metric)
                XCTAssertEqual(got.ids, expected.map(\.0), "\(metric) k \(k)")
                for (s, e) in zip(got.scores, expected.map(\.1)) { XCTAssertEqual(s, e, accuracy: 1e-3 * max(1, abs(e)), "\(metric) k \(k)") }
                // The batch path (GEMM) agrees.
                XCTAssertEqual(try index.search(batch: q, k: k).ids, got.ids, "\(metric) k \(k) batch")
            }
        }
    }
}
