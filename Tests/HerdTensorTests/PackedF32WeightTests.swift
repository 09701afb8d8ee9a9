import Foundation
import HerdTensor
import XCTest

/// `PackedF32Weight` (CHerdKernels' AVX-512 kernel on a weight packed once, bias and ReLU fused)
/// against a plain double-precision triple loop.
final class PackedF32WeightTests: XCTestCase {
    func testPackedGemmMatchesPlainLoop() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f (or HERD_F32_PACKED=0): the packed kernel is not used here")
        var rng = SplitMix64(seed: 31)
        // Edges: N not a multiple of 16 or of 64, M not a multiple of 6, tiny and serving shapes.
        for (m, n, k) in [(1, 1, 1), (7, 37, 13), (6, 64, 2), (13, 100, 35), (50, 512, 1024), (5, 17, 3), (12, 256, 128), (200, 48, 65), (50, 1024, 27)] {
            let a = (0..<(m * k)).map { _ in rng.nextGaussian() }, w = (0..<(n * k)).map { _ in rng.nextGaussian() }
            let bias = (0..<n).map { _ in rng.nextGaussian() }
            let packed = w.withUnsafeBufferPointer { PackedF32Weight($0.baseAddress!, ldw: k, n: n, k: k) }
            for (withBias, relu) in [(false, false), (true, false), (true, true), (false, true)] {
                var c = [Float](repeating: .nan, count: m * n)
                bias.withUnsafeBufferPointer { bp in
                    a.withUnsafeBufferPointer { ap in
                        c.withUnsafeMutableBufferPointer {
                            packed.multiply(m: m, a: ap.baseAddress!, lda: k, bias: withBias ? bp.baseAddress! : nil, relu: relu, c: $0.baseAddress!, ldc: n)
                        }
                    }
                }
                for i in 0..<m {
                    for j in 0..<n {
                        var ref: Double = withBias ? Double(bias[j]) : 0, mag: Double = abs(ref)
                        for p in 0..<k {
                            let t = Double(a[i * k + p]) * Double(w[j * k + p])
                            ref += t
                            mag += abs(t)
                        }
                        if relu { ref = max(ref, 0) }
                        // FP32 accumulation in another order: error ≲ K·ε·Σ|terms|.
                        XCTAssertEqual(Double(c[i * n + j]), ref, accuracy: 1e-7 * Double(k + 1) * mag + 1e-30,
                                       "[\(m), \(n), \(k)] bias \(withBias) relu \(relu) at (\(i), \(j))")
                    }
                }
            }
        }
    }

    func testLeadingDimensionsAndOddStrides() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f here")
        let m = 7, n = 20, k = 9, lda = 11, ldw = 10, ldc = 23
        let a = (0..<(m * lda)).map { Float($0 % 7) - 3 }, w = (0..<(n * ldw)).map { Float($0 % 5) - 2 }
        let bias = (0..<n).map { Float($0 % 3) - 1 }
        let packed = w.withUnsafeBufferPointer { PackedF32Weight($0.baseAddress!, ldw: ldw, n: n, k: k) }
        var c = [Float](repeating: -7, count: m * ldc)
        a.withUnsafeBufferPointer { ap in
            bias.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { packed.multiply(m: m, a: ap.baseAddress!, lda: lda, bias: bp.baseAddress!, relu: true, c: $0.baseAddress!, ldc: ldc) }
            }
        }
        for i in 0..<m {
            for j in 0..<ldc {
                if j >= n { XCTAssertEqual(c[i * ldc + j], -7, "column \(j) beyond N untouched"); continue }
                var ref: Float = bias[j]
                for p in 0..<k { ref += a[i * lda + p] * w[j * ldw + p] }  // small integers: exact
                XCTAssertEqual(c[i * ldc + j], max(ref, 0), "(\(i), \(j))")
            }
        }
    }
}
