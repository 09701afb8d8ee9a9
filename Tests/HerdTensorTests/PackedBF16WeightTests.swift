import Foundation
import HerdTensor
import XCTest

/// `PackedBF16Weight` (CHerdKernels' AVX512_BF16 kernel on a weight packed once) against a plain
/// triple loop over the BF16-rounded operands.
final class PackedBF16WeightTests: XCTestCase {
    func testPackedGemmMatchesPlainLoopOnRoundedOperands() throws {
        try XCTSkipUnless(PackedBF16Weight.available && BF16GEMM.backend.packed, "no avx512_bf16 (or HERD_BF16_PACKED=0): the packed kernel is not used here")
        var rng = SplitMix64(seed: 21)
        // Edges: K odd, N not a multiple of 16 or of 64, M not a multiple of 6, tiny and real shapes.
        for (m, n, k) in [(1, 1, 1), (7, 37, 13), (6, 64, 2), (13, 100, 35), (50, 512, 1024), (5, 17, 3), (12, 256, 128), (200, 48, 65)] {
            let a = (0..<(m * k)).map { _ in rng.nextGaussian() }, w = (0..<(n * k)).map { _ in rng.nextGaussian() }
            let ab = BF16Buffer(capacity: m * k)
            ab.assign(from: a, count: m * k)
            let packed = w.withUnsafeBufferPointer { PackedBF16Weight($0.baseAddress!, ldw: k, n: n, k: k) }
            var c = [Float](repeating: .nan, count: m * n)
            c.withUnsafeMutableBufferPointer { packed.multiply(m: m, a: ab, lda: k, c: $0.baseAddress!, ldc: n) }
            for i in 0..<m {
                for j in 0..<n {
                    var ref: Double = 0, mag: Double = 0
                    for p in 0..<k {
                        let t = Double(BF16.rounded(a[i * k + p])) * Double(BF16.rounded(w[j * k + p]))
                        ref += t
                        mag += abs(t)
                    }
                    // FP32 accumulation in another order: error ≲ K·ε·Σ|terms|.
                    XCTAssertEqual(Double(c[i * n + j]), ref, accuracy: 1e-6 * Double(k) * mag + 1e-30, "[\(m), \(n), \(k)] at (\(i), \(j))")
                }
            }
        }
    }

    func testLeadingDimensionsAndOddStrides() throws {
        try XCTSkipUnless(PackedBF16Weight.available && BF16GEMM.backend.packed, "no avx512_bf16 here")
        let m = 3, n = 20, k = 9, lda = 11, ldw = 10, ldc = 23
        let a = (0..<(m * lda)).map { Float($0 % 7) - 3 }, w = (0..<(n * ldw)).map { Float($0 % 5) - 2 }
        let ab = BF16Buffer(capacity: m * lda)
        ab.assign(from: a, count: m * lda)
        let packed = w.withUnsafeBufferPointer { PackedBF16Weight($0.baseAddress!, ldw: ldw, n: n, k: k) }
        var c = [Float](repeating: -7, count: m * ldc)
        c.withUnsafeMutableBufferPointer { packed.multiply(m: m, a: ab, lda: lda, c: $0.baseAddress!, ldc: ldc) }
        for i in 0..<m {
            for j in 0..<ldc {
                if j >= n { XCTAssertEqual(c[i * ldc + j], -7, "column \(j) beyond N untouched"); continue }
                var ref: Float = 0
                for p in 0..<k { ref += a[i * lda + p] * w[j * ldw + p] }  // small integers: exact
                XCTAssertEqual(c[i * ldc + j], ref, "(\(i), \(j))")
            }
        }
    }
    /// The fused epilogue (bias, ReLU, rounded output) equals the plain product followed by the
    /// same steps done separately, bit for bit (also for NaN and ties).
    func testFusedEpilogueMatchesSeparatePasses() throws {
        try XCTSkipUnless(PackedBF16Weight.available && BF16GEMM.backend.packed, "no avx512_bf16 here")
        var rng = SplitMix64(seed: 23)
        for (m, n, k) in [(1, 1, 1), (7, 37, 13), (13, 100, 35), (50, 512, 256), (200, 48, 65)] {
            let a = (0..<(m * k)).map { _ in rng.nextGaussian() }, w = (0..<(n * k)).map { _ in rng.nextGaussian() }
            var bias = (0..<n).map { _ in rng.nextGaussian() }
            if n > 3 { bias[3] = .nan }
            let ab = BF16Buffer(capacity: m * k)
            ab.assign(from: a, count: m * k)
            let packed = w.withUnsafeBufferPointer { PackedBF16Weight($0.baseAddress!, ldw: k, n: n, k: k) }
            var plain = [Float](repeating: 0, count: m * n)
            plain.withUnsafeMutableBufferPointer { packed.multiply(m: m, a: ab, lda: k, c: $0.baseAddress!, ldc: n) }
            for relu in [false, true] {
                for withOutput in [false, true] {
                    let what = "[\(m), \(n), \(k)] relu \(relu) output \(withOutput)"
                    var expected = plain
                    for i in 0..<m { for j in 0..<n {
                        let v = expected[i * n + j] + bias[j]
                        expected[i * n + j] = relu ? max(v, 0) : v
                    } }
                    let out = withOutput ? BF16Buffer(capacity: m * n, packed: true) : nil
                    var c = [Float](repeating: .nan, count: m * n)
                    bias.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer {
                            packed.multiply(m: m, a: ab, lda: k, bias: bp.baseAddress!, relu: relu, c: $0.baseAddress!, ldc: n, output: out)
                        }
                    }
                    XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), what)
                    if let out {
                        XCTAssertEqual(out.count, m * n, what)
                        XCTAssertEqual((0..<(m * n)).map { out[$0].bitPattern }, expected.map { BF16.rounded($0).bitPattern }, what)
                        // Without C: the same rounded output, C untouched.
                        let only = BF16Buffer(capacity: m * n, packed: true)
                        bias.withUnsafeBufferPointer { bp in
                            packed.multiply(m: m, a: ab, lda: k, bias: bp.baseAddress!, relu: relu, c: nil, ldc: n, output: only)
                        }
                        XCTAssertEqual(only.count, m * n, what)
                        XCTAssertEqual((0..<(m * n)).map { only[$0].bitPattern }, expected.map { BF16.rounded($0).bitPattern }, "\(what), no C")
                    }
                }
            }
        }
    }
}
