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

    /// `multiplySparse`: the product, each row's sparse terms (rows of a transposed weight scaled
    /// by their values), bias and ReLU, into FP32 and/or BF16 — against a plain double loop, with
    /// K = 0 (no product), rows without terms, counts as values, and N / M off the block sizes.
    func testSparseTermsAndBF16OutputMatchPlainLoop() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f (or HERD_F32_PACKED=0): the packed kernel is not used here")
        var rng = SplitMix64(seed: 77)
        for (m, n, k) in [(1, 16, 1), (7, 37, 0), (6, 64, 27), (13, 100, 5), (50, 1024, 27), (200, 48, 3), (5, 17, 12)] {
            let tRows = 30
            let a = (0..<(m * max(k, 1))).map { _ in rng.nextGaussian() }, w = (0..<(n * max(k, 1))).map { _ in rng.nextGaussian() }
            let wt = (0..<(tRows * (n + 3))).map { _ in rng.nextGaussian() }, ldt = n + 3
            let bias = (0..<n).map { _ in rng.nextGaussian() }
            // Row i has i % 4 terms (0: none), values 1 (one-hot) or a count.
            var rowStart: [Int32] = [0], cols: [Int32] = [], vals: [Float] = []
            for i in 0..<m {
                for t in 0..<(i % 4) {
                    cols.append(Int32(rng.next() % UInt64(tRows)))
                    vals.append(t == 2 ? Float(rng.next() % 5) + 0.5 : 1)
                }
                rowStart.append(Int32(cols.count))
            }
            let packed = k == 0 ? nil : w.withUnsafeBufferPointer { PackedF32Weight($0.baseAddress!, ldw: k, n: n, k: k) }
            for relu in [false, true] {
                for (writeC, withBF16) in [(true, false), (true, true), (false, true)] {
                    var c = [Float](repeating: .nan, count: m * n)
                    let out: BF16Buffer? = withBF16 ? BF16Buffer(capacity: m * n, packed: true) : nil
                    a.withUnsafeBufferPointer { ap in
                        wt.withUnsafeBufferPointer { tp in
                            bias.withUnsafeBufferPointer { bp in
                                rowStart.withUnsafeBufferPointer { rp in
                                    cols.withUnsafeBufferPointer { cp in
                                        vals.withUnsafeBufferPointer { vp in
                                            c.withUnsafeMutableBufferPointer { cb in
                                                PackedF32Weight.multiplySparse(m: m, n: n, weight: packed, a: ap.baseAddress, lda: k,
                                                                               rowStart: rp.baseAddress, columns: cp.baseAddress, values: vp.baseAddress,
                                                                               transposed: tp.baseAddress, ldt: ldt, bias: bp.baseAddress, relu: relu,
                                                                               c: writeC ? cb.baseAddress : nil, ldc: n, output: out)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    let what = "[\(m), \(n), \(k)] relu \(relu) c \(writeC) bf16 \(withBF16)"
                    var expected: [Double] = [], magnitude: [Double] = []
                    for i in 0..<m {
                        for j in 0..<n {
                            var ref = Double(bias[j]), mag = abs(ref)
                            for p in 0..<k { let t = Double(a[i * k + p]) * Double(w[j * k + p]); ref += t; mag += abs(t) }
                            for e in Int(rowStart[i])..<Int(rowStart[i + 1]) {
                                let t = Double(vals[e]) * Double(wt[Int(cols[e]) * ldt + j]); ref += t; mag += abs(t)
                            }
                            expected.append(relu ? max(ref, 0) : ref)
                            magnitude.append(mag)
                        }
                    }
                    if writeC {
                        for e in 0..<(m * n) {
                            XCTAssertEqual(Double(c[e]), expected[e], accuracy: 1e-7 * Double(k + 5) * magnitude[e] + 1e-30, "\(what) at \(e)")
                        }
                    } else {
                        XCTAssertTrue(c.allSatisfy(\.isNaN), "\(what): c untouched")
                    }
                    if let out {
                        XCTAssertEqual(out.count, m * n, what)
                        for e in 0..<(m * n) {
                            if writeC {
                                XCTAssertEqual(out[e], BF16.rounded(c[e]), "\(what): BF16 = rounded FP32 at \(e)")
                            } else {
                                // Within half a BF16 ulp (2⁻⁹ relative) of the exact result, plus FP32 summation error.
                                XCTAssertEqual(Double(out[e]), expected[e], accuracy: abs(expected[e]) / 256 + 1e-6 * Double(k + 5) * magnitude[e] + 1e-30, "\(what) at \(e)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// `multiplySparse` without bias writes its raw accumulators (checked against a plain loop);
    /// `rowsBiasEpilogue` over those rows (in any order) then equals `multiplySparse` with the bias
    /// bit for bit, FP32 and BF16 (the first layer's row cache relies on it).
    func testRawRowsThenEpilogueEqualTheFusedKernelBitForBit() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f (or HERD_F32_PACKED=0): the packed kernel is not used here")
        var rng = SplitMix64(seed: 91)
        for (m, n, k) in [(1, 16, 1), (7, 37, 0), (13, 100, 5), (50, 1024, 27), (6, 17, 12)] {
            let tRows = 20, ldt = n + 5
            let a = (0..<(m * max(k, 1))).map { _ in rng.nextGaussian() }, w = (0..<(n * max(k, 1))).map { _ in rng.nextGaussian() }
            let wt = (0..<(tRows * ldt)).map { _ in rng.nextGaussian() }
            var bias = (0..<n).map { _ in rng.nextGaussian() }
            bias[0] = -0.0
            var rowStart: [Int32] = [0], cols: [Int32] = [], vals: [Float] = []
            for i in 0..<m {
                for t in 0..<(i % 3) {
                    cols.append(Int32(rng.next() % UInt64(tRows)))
                    vals.append(t == 1 ? 2.5 : 1)
                }
                rowStart.append(Int32(cols.count))
            }
            let packed = k == 0 ? nil : w.withUnsafeBufferPointer { PackedF32Weight($0.baseAddress!, ldw: k, n: n, k: k) }
            func run(bias b: [Float]?, relu: Bool, out: BF16Buffer?) -> [Float] {
                var c = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { ap in
                    wt.withUnsafeBufferPointer { tp in
                        rowStart.withUnsafeBufferPointer { rp in
                            cols.withUnsafeBufferPointer { cp in
                                vals.withUnsafeBufferPointer { vp in
                                    c.withUnsafeMutableBufferPointer { cb in
                                      (b ?? [1]).withUnsafeBufferPointer { bb in
                                        let bp = b == nil ? nil : bb.baseAddress
                                        PackedF32Weight.multiplySparse(m: m, n: n, weight: packed, a: ap.baseAddress, lda: k,
                                                                       rowStart: rp.baseAddress, columns: cp.baseAddress, values: vp.baseAddress,
                                                                       transposed: tp.baseAddress, ldt: ldt, bias: bp, relu: relu,
                                                                       c: cb.baseAddress, ldc: n, output: out)
                                      }
                                    }
                                }
                            }
                        }
                    }
                }
                return c
            }
            let raw = run(bias: nil, relu: false, out: nil)
            for i in 0..<m {
                for j in 0..<n {
                    var ref = 0.0, mag = 0.0
                    for p in 0..<k { let t = Double(a[i * k + p]) * Double(w[j * k + p]); ref += t; mag += abs(t) }
                    for e in Int(rowStart[i])..<Int(rowStart[i + 1]) { let t = Double(vals[e]) * Double(wt[Int(cols[e]) * ldt + j]); ref += t; mag += abs(t) }
                    XCTAssertEqual(Double(raw[i * n + j]), ref, accuracy: 1e-7 * Double(k + 5) * mag + 1e-30, "raw [\(m), \(n), \(k)] at \(i), \(j)")
                }
            }
            // Rows fed to the epilogue in reverse order (as a cache's scattered rows would be).
            let order = Array((0..<m).reversed())
            for relu in [false, true] {
                let fusedOut = BF16Buffer(capacity: m * n, packed: true), epiOut = BF16Buffer(capacity: m * n, packed: true)
                let fused = run(bias: bias, relu: relu, out: fusedOut)
                var epi = [Float](repeating: .nan, count: m * n)
                raw.withUnsafeBufferPointer { rb in
                    let rows = order.map { rb.baseAddress! + $0 * n }
                    rows.withUnsafeBufferPointer { rp in
                        bias.withUnsafeBufferPointer { bp in
                            epi.withUnsafeMutableBufferPointer { eb in
                                PackedF32Weight.rowsBiasEpilogue(m: m, n: n, rows: rp.baseAddress!, bias: bp.baseAddress, relu: relu,
                                                                 c: eb.baseAddress, ldc: n, output: epiOut)
                            }
                        }
                    }
                }
                XCTAssertEqual(epiOut.count, m * n)
                for (r, i) in order.enumerated() {
                    for j in 0..<n {
                        XCTAssertEqual(epi[r * n + j].bitPattern, fused[i * n + j].bitPattern, "[\(m), \(n), \(k)] relu \(relu) row \(i) col \(j)")
                        XCTAssertEqual(epiOut[r * n + j].bitPattern, fusedOut[i * n + j].bitPattern, "BF16 [\(m), \(n), \(k)] relu \(relu) row \(i) col \(j)")
                    }
                }
            }
        }
    }
}
