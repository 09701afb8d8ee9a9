@testable import HerdTensor
import HerdTestSupport
import XCTest

/// Round-to-nearest-even FP32 → BF16 computed differently from `BF16.round`: pick the nearer of
/// the two neighbouring BF16 values by exact (Double) distance, the even one on a tie.
func referenceBF16(_ x: Float) -> Float {
    if x.isNaN || x.isInfinite { return x }
    let bits = x.bitPattern
    let lo = Float(bitPattern: bits & 0xFFFF_0000)  // toward zero
    let hiBits = (bits & 0xFFFF_0000) &+ 0x1_0000  // away from zero (may be ±infinity)
    let hi = Float(bitPattern: hiBits)
    // Beyond the largest BF16 the next step "up" is 2^128 (which rounds to infinity).
    let hiValue = hi.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(hi)
    let dLo = abs(Double(x) - Double(lo)), dHi = abs(hiValue - Double(x))
    if dLo < dHi { return lo }
    if dHi < dLo { return hi }
    return (bits >> 16) & 1 == 0 ? lo : hi
}

func sameBits(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

final class BF16Tests: XCTestCase {
    func testSpecialValuesTiesAndSubnormals() {
        let cases: [(Float, Float)] = [
            (0, 0), (-0.0, -0.0), (1, 1), (-2.5, -2.5),
            (1 + 0x1p-8, 1),  // exactly halfway between 1 and 1+2^-7: to the even one, 1
            (1 + 3 * 0x1p-8, 1 + 0x1p-6),  // halfway between 1+2^-7 and 1+2^-6: to the even one, up
            (-(1 + 3 * 0x1p-8), -(1 + 0x1p-6)),
            (1 + 0x1p-8 + 0x1p-20, 1 + 0x1p-7),  // just above halfway: up
            (.infinity, .infinity), (-.infinity, -.infinity),
            (.greatestFiniteMagnitude, .infinity),  // beyond the largest BF16 + half an ulp
            (Float(bitPattern: 0x7F7F_7FFF), Float(bitPattern: 0x7F7F_0000)),  // just below: stays finite
            (.leastNonzeroMagnitude, 0),  // smallest subnormal: rounds to zero, sign kept
            (-.leastNonzeroMagnitude, -0.0),
            (Float(bitPattern: 0x0000_8000), 0),  // subnormal tie: to even (zero)
            (Float(bitPattern: 0x0001_8000), Float(bitPattern: 0x0002_0000)),  // subnormal tie: to even (up)
            (Float(bitPattern: 0x0001_7FFF), Float(bitPattern: 0x0001_0000)),
            (Float(bitPattern: 0x007F_FFFF), Float(bitPattern: 0x0080_0000)),  // largest subnormal → smallest normal
        ]
        for (x, expected) in cases {
            XCTAssertTrue(sameBits(BF16.rounded(x), expected), "\(x) (\(String(x.bitPattern, radix: 16))) → \(BF16.rounded(x)), expected \(expected)")
            XCTAssertTrue(sameBits(referenceBF16(x), expected), "reference disagrees on \(x)")
        }
        for nan in [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFC1_2345), Float.signalingNaN] {
            let h = BF16.round(nan)
            XCTAssertTrue(BF16.toFloat(h).isNaN, "NaN \(String(nan.bitPattern, radix: 16)) became \(String(h, radix: 16))")
            XCTAssertEqual(h & 0x8000, UInt16(truncatingIfNeeded: nan.bitPattern >> 16) & 0x8000, "NaN sign kept")
        }
    }

    func testScalarAndVectorConversionsMatchReferenceOnRandomBitPatterns() {
        var rng = SplitMix64(seed: 42)
        let n = 100_003  // not a multiple of 8: exercises the scalar tail
        var x = (0..<n).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        x += [Float.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1 + 0x1p-8, 1 + 3 * 0x1p-8]
        var packed = [UInt16](repeating: 0, count: x.count), widened = [Float](repeating: 0, count: x.count)
        BF16.convert(x, count: x.count, into: &packed)
        BF16.roundInFloat(x, count: x.count, into: &widened)
        var bad = 0
        for i in 0..<x.count {
            let ref = referenceBF16(x[i])
            if !sameBits(BF16.rounded(x[i]), ref) || !sameBits(BF16.toFloat(packed[i]), ref) || !sameBits(widened[i], ref)
                || (x[i].isNaN && (packed[i] != BF16.round(x[i]) || widened[i].bitPattern >> 16 != UInt32(packed[i]))) {
                if bad < 5 { XCTFail("x = \(String(x[i].bitPattern, radix: 16)): reference \(ref), scalar \(BF16.rounded(x[i])), vector \(BF16.toFloat(packed[i])), in-float \(widened[i])") }
                bad += 1
            }
        }
        XCTAssertEqual(bad, 0)
    }

    /// `C = alpha op(A) op(B) + beta C` in Double on BF16-rounded A and B.
    func reference(_ ta: Transpose, _ tb: Transpose, _ a: Tensor, _ b: Tensor, _ c: [Float], m: Int, n: Int, k: Int, alpha: Float, beta: Float) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = BF16.rounded(ta == .none ? a[i * k + p] : a[p * m + i])
                    let bv = BF16.rounded(tb == .none ? b[p * n + j] : b[j * k + p])
                    s += Double(av) * Double(bv)
                }
                out[i * n + j] = Float(Double(alpha) * s + Double(beta) * Double(out[i * n + j]))
            }
        }
        return out
    }

    func testGemmBF16MatchesReferenceOnRoundedInputsForAllTransposeCases() {
        for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
            for (m, n, k) in [(1, 1, 1), (7, 5, 3), (130, 67, 33), (64, 20, 513)] {
                let a = randomTensor(ta == .none ? [m, k] : [k, m], seed: 1)
                let b = randomTensor(tb == .none ? [k, n] : [n, k], seed: 2)
                let c = randomTensor([m, n], seed: 3)
                let expected = reference(ta, tb, a, b, c.array, m: m, n: n, k: k, alpha: 0.7, beta: 0.3)
                gemmBF16(ta, tb, m: m, n: n, k: k, alpha: 0.7, a: a.data, lda: a.columns, b: b.data, ldb: b.columns, beta: 0.3, c: c.data, ldc: n)
                // Only FP32 accumulation order separates the two: products of BF16 values are exact.
                let scale = expected.map { abs($0) }.max()! + 1
                XCTAssertLessThan(maxAbsDifference(c.array, expected), 4e-7 * Float(k) * scale, "\(ta) \(tb) \(m)x\(n)x\(k)")
                // And BF16 is really used: FP32 GEMM on the unrounded inputs gives other numbers.
                if k >= 33 {
                    let c32 = Tensor(shape: [m, n])
                    gemm(ta, tb, m: m, n: n, k: k, a: a.data, lda: a.columns, b: b.data, ldb: b.columns, c: c32.data, ldc: n)
                    let cb = Tensor(shape: [m, n])
                    gemmBF16(ta, tb, m: m, n: n, k: k, a: a.data, lda: a.columns, b: b.data, ldb: b.columns, c: cb.data, ldc: n)
                    XCTAssertGreaterThan(maxAbsDifference(c32.array, cb.array), 1e-5)
                }
            }
        }
    }

    func testZeroSizesAndBufferReuse() {
        let c = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let a = BF16Buffer(capacity: 1), b = BF16Buffer(capacity: 1)
        gemmBF16(.none, .none, m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, beta: 0.5, c: c.data, ldc: 2)
        XCTAssertEqual(c.array, [0.5, 1, 1.5, 2])
        let x = Tensor(shape: [3], values: [1 + 0x1p-8, 3, -0.1])
        let buf = BF16Buffer.ensure(nil, from: x.data, count: 3)
        XCTAssertTrue(BF16Buffer.ensure(buf, from: x.data, count: 2) === buf)
        XCTAssertEqual([buf[0], buf[1]], [1, 3])
        let packed = BF16Buffer(capacity: 3, packed: true), widened = BF16Buffer(capacity: 3, packed: false)
        packed.assign(from: x.data, count: 3)
        widened.assign(from: x.data, count: 3)
        XCTAssertEqual((0..<3).map { packed[$0] }, (0..<3).map { widened[$0] })
        XCTAssertEqual(widened[2], BF16.rounded(-0.1))
    }

    func testBackendSelectionAndSelfTests() {
        XCTAssertTrue(BF16GEMM.selfTest(.emulated))
        XCTAssertFalse(BF16GEMM.note.isEmpty)
        // Whatever was chosen passed its self-test; without AVX-512 only the emulation can run.
        XCTAssertTrue(BF16GEMM.selfTest(BF16GEMM.backend))
        let env = ProcessInfo.processInfo.environment["HERD_BF16_BACKEND"]
        if env == nil && !BF16GEMM.cpuFlags.contains("avx512f") && !BF16GEMM.cpuFlags.isEmpty {
            XCTAssertEqual(BF16GEMM.backend, .emulated, BF16GEMM.note)
        }
        // A backend whose library is absent (or has no kernel for this CPU) fails cleanly.
        if BF16GEMM.sbgemm == nil { XCTAssertFalse(BF16GEMM.selfTest(.openblas)) }
        if !BF16GEMM.cpuFlags.contains("avx512f") && !BF16GEMM.cpuFlags.isEmpty { XCTAssertFalse(BF16GEMM.selfTest(.onednn)) }
    }
}
