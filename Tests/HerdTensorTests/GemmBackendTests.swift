import HerdTensor
import HerdTestSupport
import XCTest

/// Every FP32 GEMM backend against a plain loop: all transpose cases, leading dimensions wider
/// than the matrices, `beta` 0 over garbage (NaN) and `beta` ≠ 0.
final class GemmBackendTests: XCTestCase {
    func testEveryBackendMatchesPlainLoop() throws {
        var ran = 0
        for backend in SGEMMBackend.allCases {
            for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
                for (m, n, k, pad) in [(1, 1, 1, 0), (9, 16, 13, 3), (130, 67, 33, 0), (64, 24, 429, 5), (33, 1, 256, 0)] {
                    let (ar, ac) = ta == .none ? (m, k) : (k, m), (br, bc) = tb == .none ? (k, n) : (n, k)
                    let lda = ac + pad, ldb = bc + pad, ldc = n + pad
                    let a = randomTensor([ar, lda], seed: 1), b = randomTensor([br, ldb], seed: 2)
                    for (alpha, beta) in [(Float(1), Float(0)), (0.7, 0.3)] {
                        let c = randomTensor([m, ldc], seed: 3)
                        if beta == 0 { c.fill(.nan) }
                        var expected = c.array
                        for i in 0..<m {
                            for j in 0..<n {
                                var s: Float = 0
                                for p in 0..<k {
                                    let av = ta == .none ? a[i * lda + p] : a[p * lda + i], bv = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                                    s += av * bv
                                }
                                expected[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * expected[i * ldc + j])
                            }
                        }
                        guard gemm(backend: backend, ta, tb, m: m, n: n, k: k, alpha: alpha, a: a.data, lda: lda, b: b.data, ldb: ldb,
                                   beta: beta, c: c.data, ldc: ldc) else {
                            XCTAssertNotEqual(backend, .openblas, "OpenBLAS is always available")
                            continue
                        }
                        ran += 1
                        // Only the M×N block is written; padding columns keep their values.
                        let got = c.array
                        for i in 0..<m {
                            for j in 0..<ldc {
                                let e = expected[i * ldc + j], g = got[i * ldc + j]
                                if j >= n && beta == 0 { XCTAssertTrue(g.isNaN, "padding overwritten"); continue }
                                XCTAssertEqual(g, e, accuracy: 1e-4 * Float(k).squareRoot() * max(1, abs(e)),
                                               "\(backend) \(ta) \(tb) \(m)x\(n)x\(k) pad \(pad) [\(i), \(j)]")
                            }
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(ran, 0)
    }

    /// `gemm` (the dispatching entry point) on the selected backend, narrow and wide shapes.
    func testDispatchingGemmMatchesPlainLoop() {
        XCTAssertFalse(SGEMM.note.isEmpty)
        for (m, n, k) in [(4, 512, 13), (1024, 1, 256), (96, 40, 70)] {
            let a = randomTensor([m, k], seed: 4), b = randomTensor([n, k], seed: 5), c = Tensor(shape: [m, n])
            c.fill(.nan)
            gemm(.none, .transposed, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: k, c: c.data, ldc: n)
            var worst: Float = 0
            for i in 0..<m {
                for j in 0..<n {
                    var s: Float = 0
                    for p in 0..<k { s += a[i * k + p] * b[j * k + p] }
                    worst = max(worst, abs(c[i * n + j] - s))
                }
            }
            XCTAssertLessThan(worst, 1e-3, "\(m)x\(n)x\(k) on \(SGEMM.backend)")
        }
    }
}
