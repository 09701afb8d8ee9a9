import HerdTensor
import HerdTestSupport
import XCTest

/// The fused `C = act(op(A) · op(B) + bias)` (oneDNN post-ops on `matmul`, GEMM + epilogue
/// elsewhere) against a plain loop: every backend, every transpose case, padded leading dimensions.
final class GemmBiasActivationTests: XCTestCase {
    func testEveryBackendMatchesPlainLoop() {
        var ran = 0
        for backend in SGEMMBackend.allCases {
            for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
                for (m, n, k, pad) in [(9, 16, 13, 3), (130, 67, 33, 0), (64, 24, 429, 5), (8, 1, 40, 2)] {
                    for relu in [false, true] {
                        let (ar, ac) = ta == .none ? (m, k) : (k, m), (br, bc) = tb == .none ? (k, n) : (n, k)
                        let lda = ac + pad, ldb = bc + pad, ldc = n + pad
                        let a = randomTensor([ar, lda], seed: 11), b = randomTensor([br, ldb], seed: 12), bias = randomTensor([n], seed: 13)
                        let c = Tensor(shape: [m, ldc])
                        c.fill(.nan)
                        guard gemmBiasActivation(backend: backend, ta, tb, m: m, n: n, k: k, a: a.data, lda: lda, b: b.data, ldb: ldb,
                                                 bias: bias.data, relu: relu, c: c.data, ldc: ldc) else {
                            XCTAssertNotEqual(backend, .openblas, "OpenBLAS is always available")
                            continue
                        }
                        ran += 1
                        for i in 0..<m {
                            for j in 0..<ldc {
                                let g = c[i * ldc + j]
                                if j >= n { XCTAssertTrue(g.isNaN, "padding overwritten"); continue }
                                var s = bias[j]
                                for p in 0..<k {
                                    s += (ta == .none ? a[i * lda + p] : a[p * lda + i]) * (tb == .none ? b[p * ldb + j] : b[j * ldb + p])
                                }
                                let e = relu ? max(s, 0) : s
                                XCTAssertEqual(g, e, accuracy: 1e-4 * Float(k).squareRoot() * max(1, abs(e)),
                                               "\(backend) \(ta) \(tb) \(m)x\(n)x\(k) relu \(relu) [\(i), \(j)]")
                            }
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(ran, 0)
    }

    /// The dispatching entry point (selected backend, width rule) on wide and narrow shapes.
    func testDispatchingEntryPointMatchesPlainLoop() {
        for (m, n, k, relu) in [(96, 40, 70, true), (33, 1, 256, false), (4, 512, 13, true)] {
            let a = randomTensor([m, k], seed: 4), w = randomTensor([n, k], seed: 5), bias = randomTensor([n], seed: 6)
            let c = Tensor(shape: [m, n])
            c.fill(.nan)
            gemmBiasActivation(.none, .transposed, m: m, n: n, k: k, a: a.data, lda: k, b: w.data, ldb: k, bias: bias.data, relu: relu, c: c.data, ldc: n)
            var worst: Float = 0
            for i in 0..<m {
                for j in 0..<n {
                    var s = bias[j]
                    for p in 0..<k { s += a[i * k + p] * w[j * k + p] }
                    worst = max(worst, abs(c[i * n + j] - (relu ? max(s, 0) : s)))
                }
            }
            XCTAssertLessThan(worst, 1e-3, "\(m)x\(n)x\(k) on \(SGEMM.backend)")
        }
    }

    /// Cached primitives bind pointers per call: the same shape over other buffers (and a weight
    /// changed in place between calls, as an optimizer step does) gives the new answer.
    func testCachedShapeRebindsBuffersAndSeesUpdatedWeights() {
        let m = 24, n = 16, k = 20
        let w = randomTensor([n, k], seed: 21), bias = randomTensor([n], seed: 22)
        for round in 0..<3 {
            let a = randomTensor([m, k], seed: UInt64(30 + round))
            let c = Tensor(shape: [m, n])
            gemmBiasActivation(.none, .transposed, m: m, n: n, k: k, a: a.data, lda: k, b: w.data, ldb: k, bias: bias.data, relu: false, c: c.data, ldc: n)
            for i in 0..<m {
                for j in 0..<n {
                    var s = bias[j]
                    for p in 0..<k { s += a[i * k + p] * w[j * k + p] }
                    XCTAssertEqual(c[i * n + j], s, accuracy: 1e-4, "round \(round) [\(i), \(j)]")
                }
            }
            for i in 0..<w.count { w[i] -= 0.25 * Float(round + 1) }  // an "optimizer step" in place
            bias[0] += 1
        }
    }
}
