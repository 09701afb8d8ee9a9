@testable import HerdTensor
import HerdTestSupport
import XCTest

/// The fused bias/activation and gradient epilogues against the plain loops they replace.
final class FusedEpilogueTests: XCTestCase {
    func testReluBackwardColumnSumsMatchesSeparateLoops() {
        let rows = 7, cols = 13
        for relu in [false, true] {
            let y = randomTensor([rows, cols], seed: 1), g = randomTensor([rows, cols], seed: 2)
            for i in stride(from: 0, to: y.count, by: 3) { y[i] = 0 }  // ReLU outputs are often exactly 0
            var expectedG = g.array, expectedSums = (0..<cols).map { Float($0) }
            for r in 0..<rows {
                for j in 0..<cols {
                    if relu && !(y[r * cols + j] > 0) { expectedG[r * cols + j] = 0 }
                    expectedSums[j] += expectedG[r * cols + j]
                }
            }
            var sums = (0..<cols).map { Float($0) }
            Kernels.reluBackwardColumnSums(g.data, reluOutput: relu ? UnsafePointer(y.data) : nil, rows: rows, cols: cols, into: &sums)
            XCTAssertEqual(g.array, expectedG)
            XCTAssertEqual(sums, expectedSums)
        }
    }

    func testBiasActivationEpilogueMatchesAddBiasThenRounding() {
        let rows = 5, cols = 19
        for packed in [true, false] {
            for relu in [false, true] {
                let y = randomTensor([rows, cols], seed: 3), bias = randomTensor([cols], seed: 4)
                var expected = y.array
                for r in 0..<rows { for j in 0..<cols {
                    let v = expected[r * cols + j] + bias[j]
                    expected[r * cols + j] = relu ? max(v, 0) : v
                } }
                let buf = BF16Buffer(capacity: rows * cols + 3, packed: packed)
                buf.assignBiasActivation(y.data, rows: rows, cols: cols, bias: bias.data, relu: relu)
                XCTAssertEqual(y.array, expected)
                XCTAssertEqual(buf.count, rows * cols)
                for i in 0..<(rows * cols) {
                    XCTAssertTrue(sameBits(buf[i], referenceBF16(expected[i])), "element \(i): \(buf[i]) vs \(expected[i])")
                }
            }
        }
    }

    func testGradientEpilogueMatchesMaskSumsAndRounding() {
        let rows = 6, cols = 11
        for packed in [true, false] {
            for relu in [false, true] {
                let y = randomTensor([rows, cols], seed: 5), g = randomTensor([rows, cols], seed: 6)
                var expectedG = g.array, expectedSums = [Float](repeating: 0.5, count: cols)
                for r in 0..<rows { for j in 0..<cols {
                    if relu && !(y[r * cols + j] > 0) { expectedG[r * cols + j] = 0 }
                    expectedSums[j] += expectedG[r * cols + j]
                } }
                var sums = [Float](repeating: 0.5, count: cols)
                let buf = BF16Buffer(capacity: rows * cols, packed: packed)
                buf.assignGradient(g.data, reluOutput: relu ? UnsafePointer(y.data) : nil, rows: rows, cols: cols, columnSums: &sums)
                XCTAssertEqual(g.array, expectedG)
                XCTAssertEqual(sums, expectedSums)
                for i in 0..<(rows * cols) { XCTAssertTrue(sameBits(buf[i], referenceBF16(expectedG[i]))) }
            }
        }
    }
}
