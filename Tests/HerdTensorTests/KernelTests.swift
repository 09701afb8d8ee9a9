import Foundation
import HerdTensor
import HerdTestSupport
import XCTest

final class KernelTests: XCTestCase {
    func testSigmoidBCEMatchesPlainFormulaAndGradient() {
        let z: [Float] = [-30, -2, -0.5, 0, 0.5, 3, 40]
        let t: [Float] = [0, 1, 0, 1, 1, 0, 1]
        var p = [Float](repeating: 0, count: z.count), dz = p
        let loss = Kernels.sigmoidBCE(logits: z, labels: t, count: z.count, probabilities: &p, gradient: &dz, gradScale: 0.5)
        var expected = 0.0
        for i in 0..<z.count {
            let q = 1 / (1 + exp(-Double(z[i])))
            XCTAssertEqual(Double(p[i]), q, accuracy: 1e-6)
            // log(1 − q) for large positive z underflows in the naive formula; use the stable identity.
            expected += Double(t[i]) == 1 ? log1p(exp(-Double(z[i]))) : Double(z[i]) + log1p(exp(-Double(z[i])))
            XCTAssertEqual(dz[i], Float((q - Double(t[i])) * 0.5), accuracy: 1e-6)
        }
        XCTAssertEqual(loss, expected, accuracy: 1e-4)
    }

    func testBiasReluAndColumnSums() {
        var y: [Float] = [1, -2, 3, -4, 5, -6]
        let bias: [Float] = [0.5, 1, -10]
        Kernels.addBiasReLU(&y, rows: 2, cols: 3, ld: 3, bias: bias)
        XCTAssertEqual(y, [1.5, 0, 0, 0, 6, 0])
        var g: [Float] = [1, 2, 3, 4, 5, 6]
        Kernels.reluBackward(&g, output: y, count: 6)
        XCTAssertEqual(g, [1, 0, 0, 0, 5, 0])
        var sums: [Float] = [1, 1, 1]
        Kernels.accumulateColumnSums(g, rows: 2, cols: 3, ld: 3, into: &sums)
        XCTAssertEqual(sums, [2, 6, 1])
    }

    func testDotMatchesPlainLoopForAllLengths() {
        for n in [0, 1, 7, 8, 9, 16, 33] {
            let a = randomTensor([max(n, 1)], seed: 1), b = randomTensor([max(n, 1)], seed: 2)
            var s: Float = 0
            for i in 0..<n { s += a[i] * b[i] }
            XCTAssertEqual(Kernels.dot(a.data, b.data, count: n), s, accuracy: 1e-5)
        }
    }

    func testParallelRangesCoverEverythingOnce() {
        for (n, p) in [(10, 3), (2, 5), (0, 2), (1000, 2)] {
            let rs = Parallel.ranges(n, parts: p)
            XCTAssertEqual(rs.flatMap { Array($0) }, Array(0..<n))
        }
    }

    func testSplitMixIsDeterministic() {
        var a = SplitMix64(seed: 5), b = SplitMix64(seed: 5)
        XCTAssertEqual((0..<4).map { _ in a.next() }, (0..<4).map { _ in b.next() })
    }
}

final class EmbeddingBackwardSortTests: XCTestCase {
    func testBackwardMatchesPlainScatterForLargeAndSmallIds() {
        // Ids up to 2^31−1 take three radix passes; small ids one.
        for maxID in [5, 3000, 5_000_000, Int(Int32.max)] {
            var rng = SplitMix64(seed: UInt64(maxID))
            let bags = 300, d = 3
            var offsets: [Int32] = [0], ids: [Int32] = []
            for _ in 0..<bags {
                for _ in 0..<Int(rng.next() % 3) { ids.append(Int32(rng.next() % UInt64(maxID))) }
                offsets.append(Int32(ids.count))
            }
            let g = randomTensor([bags, d], seed: 4)
            let r = Kernels.embeddingBagBackward(gradOut: g.data, gradStride: d, dimension: d, ids: ids, offsets: offsets, bags: bags, pooling: .sum)
            var expected: [Int32: [Float]] = [:]
            for b in 0..<bags {
                for j in Int(offsets[b])..<Int(offsets[b + 1]) {
                    var row = expected[ids[j]] ?? [0, 0, 0]
                    for k in 0..<d { row[k] += g[b * d + k] }
                    expected[ids[j]] = row
                }
            }
            XCTAssertEqual(r.ids, expected.keys.sorted(), "maxID \(maxID)")
            for (u, id) in r.ids.enumerated() {
                for k in 0..<d { XCTAssertEqual(r.rows[u * d + k], expected[id]![k], accuracy: 1e-5) }
            }
        }
    }
}
